// The parts of CodeMirror 6 that quizengine's bank editor (static/editor.js) uses, as one global.
export { EditorView, Decoration } from "@codemirror/view";
export { StateField, StateEffect, EditorSelection } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { yaml } from "@codemirror/lang-yaml";
export { lintGutter, setDiagnostics } from "@codemirror/lint";
