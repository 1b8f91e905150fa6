// The bank editor (templates/instructor/edit.html). With the vendored CodeMirror 6 bundle
// (static/vendor/codemirror.min.js, the global QECodeMirror) the textarea becomes a code editor with
// YAML highlighting, and the validator's problems become lint markers and highlighted lines; without
// it the textarea stays and the same links still move to their line. Either way: a size check
// before sending, and a warning before leaving the page with unsaved changes.
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  if (!form) { return; }
  var textarea = form.querySelector("textarea[name=text]");
  var status = document.getElementById("edit-status");
  var limit = Number(form.dataset.limit);
  var dirty = form.dataset.unsaved === "1";  // a refused save: the text shown is not the file
  var leaving = false;
  var view = null;
  var CM = window.QECodeMirror;
  var problems = Array.prototype.slice.call(document.querySelectorAll("#problems li[data-line]"));

  function lineOf(doc, n) {
    return doc.line(Math.min(Math.max(1, n), doc.lines));
  }

  function diagnostics(doc) {
    return problems.map(function (li) {
      var line = lineOf(doc, Number(li.dataset.line));
      var from = Math.min(line.from + Math.max(0, Number(li.dataset.col) - 1), line.to);
      return {from: from, to: Math.max(line.to, from), severity: li.dataset.severity === "error" ? "error" : "warning",
              message: li.dataset.message};
    });
  }

  if (CM) {
    var problemLine = CM.Decoration.line({"class": "cm-problemLine"});
    var highlights = CM.StateField.define({
      create: function (state) {
        var lines = {};
        problems.forEach(function (li) { lines[lineOf(state.doc, Number(li.dataset.line)).from] = true; });
        return CM.Decoration.set(Object.keys(lines).map(Number).sort(function (a, b) { return a - b; })
          .map(function (from) { return problemLine.range(from); }));
      },
      update: function (deco, tr) { return deco.map(tr.changes); },
      provide: function (f) { return CM.EditorView.decorations.from(f); }
    });
    // In a shadow root, CodeMirror's styles go to constructed style sheets, which the CSP
    // (style-src 'self') allows; in the page they would be <style> elements, which it refuses.
    var holder = document.createElement("div");
    holder.className = "cm-holder";
    textarea.parentNode.insertBefore(holder, textarea);
    var root = holder.attachShadow({mode: "open"});
    var theme = CM.EditorView.theme({
      "&": {height: "70vh", fontSize: "13px", backgroundColor: "#fff"},
      ".cm-scroller": {overflow: "auto", fontFamily: "ui-monospace, monospace"},
      ".cm-problemLine": {backgroundColor: "#fde7e7"},
      "&.cm-focused": {outline: "3px solid #163f7a"}
    });
    view = new CM.EditorView({
      doc: textarea.value,
      parent: root,
      root: root,
      extensions: [
        CM.basicSetup, CM.yaml(), CM.lintGutter(), highlights, theme,
        // tabindex: focusable as it is (contenteditable), said so for checkers of the scrolling box
        CM.EditorView.contentAttributes.of({"aria-label": document.querySelector("label[for=bank-text]").textContent,
                                           tabindex: "0"}),
        CM.EditorView.updateListener.of(function (u) { if (u.docChanged) { dirty = true; } })
      ]
    });
    view.dispatch(CM.setDiagnostics(view.state, diagnostics(view.state.doc)));
    textarea.hidden = true;  // still sent with the form: filled in on submit
    form.classList.add("with-code-editor");
  } else {
    textarea.addEventListener("input", function () { dirty = true; });
  }

  // Each problem's link selects its line in the editor (the no-script fallback is the listing's row).
  document.querySelectorAll("#problems a.goto").forEach(function (a) {
    a.addEventListener("click", function (event) {
      var n = Number(a.parentNode.dataset.line);
      event.preventDefault();
      if (view) {
        var line = lineOf(view.state.doc, n);
        view.dispatch({selection: CM.EditorSelection.range(line.from, line.to),
                       effects: CM.EditorView.scrollIntoView(line.from, {y: "center"})});
        view.focus();
      } else {
        var lines = textarea.value.split("\n");
        var start = lines.slice(0, n - 1).join("\n").length + (n > 1 ? 1 : 0);
        textarea.focus();
        textarea.setSelectionRange(start, start + (lines[n - 1] || "").length);
      }
    });
  });

  form.addEventListener("submit", function (event) {
    if (view) { textarea.value = view.state.doc.toString(); }
    var bytes = new Blob([textarea.value]).size;
    if (limit && bytes > limit) {
      event.preventDefault();
      status.textContent = "Not sent: the file is " + (bytes / 1048576).toFixed(2) +
        " MiB and a bank file holds up to " + (limit / 1048576) + " MiB. Split it into two files.";
      return;
    }
    leaving = true;
  });

  window.addEventListener("beforeunload", function (event) {
    if (dirty && !leaving) {
      event.preventDefault();
      event.returnValue = "";  // older browsers need a value to ask
    }
  });
})();
