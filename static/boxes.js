// Every page that shows bank content (the attempt and results pages, the instructor's review and
// item preview): a formula, code block or table wider than its box scrolls inside it (style.css);
// such a box joins the Tab order, so it can be scrolled by keyboard (WCAG 2.1.1).
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll("div.math, pre, .scroll, .explanation").forEach(function (box) {
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
  if (document.fonts) { document.fonts.ready.then(mark); }  // a web font changes widths
})();
