// A formula, code block or table wider than the screen scrolls inside its own box (style.css);
// such a box joins the Tab order so it can be scrolled with the arrow keys too.
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll("div.math, span.math, pre, .scroll").forEach((box) => {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.tabIndex = 0;
        box.classList.add("scrolls");
      } else if (box.classList.contains("scrolls")) {
        box.removeAttribute("tabindex");
        box.classList.remove("scrolls");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
  if (document.fonts) document.fonts.ready.then(mark); // the math font changes widths
})();
