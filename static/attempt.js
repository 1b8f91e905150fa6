// Autosave for the attempt page: every change is sent for its own question, in order. The server
// issues the versions: each question's hidden seq-<id> field holds the stored answer's seq (empty
// when nothing is saved), a save sends that seq + 1, and the field adopts the seq each save returns.
// No clock is involved, so two devices whose clocks differ both keep saving. A save from a tab that
// missed a newer answer gets 409 with that answer, which the tab shows instead of its own. The page
// works without this script: the Save button posts the whole form with the same seq fields.
(function () {
  "use strict";
  const form = document.getElementById("attempt");
  if (!form) return;
  const url = form.dataset.autosave;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const state = new Map(); // question id -> {busy, pending, sent: the last seq sent}
  const changed = new Map(); // question id -> the ids of the parts changed since its last save was sent
  let inflight = 0; // saves sent and not yet answered
  let submitter = null; // the Save button pressed while saves were in flight

  function value(section) {
    const id = section.dataset.id, type = section.dataset.type, name = "q-" + id;
    const q = (sel) => section.querySelectorAll(sel);
    if (type === "single_choice") {
      const c = section.querySelector('input[name="' + name + '"]:checked');
      return c ? c.value : null;
    }
    if (type === "true_false") {
      const c = section.querySelector('input[name="' + name + '"]:checked');
      return c ? c.value === "true" : null;
    }
    if (type === "multiple_select") {
      const picked = Array.from(q('input[name="' + name + '"]:checked')).map((c) => c.value);
      return picked.length ? picked : null;
    }
    if (type === "short_text") {
      const v = section.querySelector('input[name="' + name + '"]').value.trim();
      return v || null;
    }
    if (type === "numeric") return numeric(section, name);
    if (type === "multipart") { // {part_id: value} of the answered parts; the whole object is saved
      const out = {};
      q(".part").forEach((p) => { const v = numeric(p, name + "-" + p.dataset.part); if (v !== null) out[p.dataset.part] = v; });
      return Object.keys(out).length ? out : null;
    }
    if (type === "matching") {
      const out = {};
      q("select").forEach((s) => { if (s.value) out[s.name.slice(name.length + 1)] = s.value; });
      return Object.keys(out).length ? out : null;
    }
    if (type === "ordering") {
      return Array.from(q("li")).map((li) => li.dataset.id);
    }
    return null;
  }

  // A numeric widget's value (a question, or one part of a multi-part question).
  function numeric(el, name) {
    const single = el.querySelector('input[name="' + name + '"]');
    if (single) return single.value.trim() || null;
    const cells = Array.from(el.querySelectorAll("input.num"));
    if (cells.every((c) => !c.value.trim())) return null;
    const shape = el.querySelector(".grid").dataset.shape.split(",").map(Number);
    if (shape.length === 1) return cells.map((c) => c.value.trim());
    const rows = Array.from({ length: shape[0] }, () => []);
    cells.forEach((c) => { rows[Number(c.dataset.i)][Number(c.dataset.j)] = c.value.trim(); });
    return rows;
  }
  function fillNumeric(el, name, response) {
    const text = (x) => (x === null || x === undefined ? "" : String(x));
    const single = el.querySelector('input[name="' + name + '"]');
    if (single) { single.value = text(response); return; }
    const flat = response === null || response === undefined ? [] : [].concat(response).flat();
    el.querySelectorAll("input.num").forEach((c, k) => { c.value = text(flat[k]); });
  }

  // Put a stored response into the question's widget (the inverse of value()).
  function fill(section, response) {
    const type = section.dataset.type, name = "q-" + section.dataset.id;
    const all = (sel) => Array.from(section.querySelectorAll(sel));
    const text = (x) => (x === null || x === undefined ? "" : String(x));
    if (type === "single_choice" || type === "multiple_select" || type === "true_false") {
      const picked = response === null ? [] : [].concat(response).map(String);
      all('input[name="' + name + '"]').forEach((c) => { c.checked = picked.includes(c.value); });
    } else if (type === "short_text") {
      section.querySelector('input[name="' + name + '"]').value = text(response);
    } else if (type === "numeric") {
      fillNumeric(section, name, response);
    } else if (type === "multipart") {
      all(".part").forEach((p) => { fillNumeric(p, name + "-" + p.dataset.part, (response || {})[p.dataset.part]); });
    } else if (type === "matching") {
      all("select").forEach((s) => { s.value = text(response && response[s.name.slice(name.length + 1)]); });
    } else if (type === "ordering" && Array.isArray(response)) {
      const ol = section.querySelector("ol.ordering");
      response.forEach((oid) => {
        const li = ol.querySelector('li[data-id="' + CSS.escape(String(oid)) + '"]');
        if (li) ol.appendChild(li); // in the stored order
      });
      ol.querySelectorAll("li").forEach((li, k) => { li.querySelector("input.rank").value = k + 1; });
    }
  }

  // The seq of the stored answer this tab has seen (-1: none), kept in the form's hidden field: the
  // Save button sends it, so a form from this tab can't overwrite an answer the tab never saw.
  function seqField(section) {
    return form.elements["seq-" + section.dataset.id];
  }
  function knownSeq(section) {
    const v = seqField(section).value;
    return v === "" ? -1 : Number(v);
  }

  function setStatus(section, text, cls, parts) {
    const s = section.querySelector(".status:not(.part-status)");
    s.textContent = text;
    s.className = "status " + (cls || "");
    // A multi-part question: each part changed since the last save shows the status of the save carrying it.
    (parts || []).forEach((pid) => {
      const p = section.querySelector('.part[data-part="' + CSS.escape(pid) + '"] .part-status');
      if (p) { p.textContent = text; p.className = "status part-status " + (cls || ""); }
    });
  }

  function mark(section, answered) {
    const nav = document.getElementById("nav-" + section.dataset.id);
    if (nav) {
      nav.className = answered ? "answered" : "unanswered";
      nav.title = answered ? "answered" : "not answered";
    }
  }

  function send(section) {
    const id = section.dataset.id;
    const st = state.get(id) || { busy: false, pending: false, sent: -1 };
    state.set(id, st);
    if (st.busy) { st.pending = true; return; }
    st.busy = true;
    st.pending = false;
    inflight += 1;
    const response = value(section);
    const parts = Array.from(changed.get(id) || []); // the parts of a multi-part question this save carries
    changed.delete(id);
    // Above the last seq sent too: a retry after a lost reply must not repeat a seq with a newer value.
    const seq = Math.max(knownSeq(section), st.sent) + 1;
    st.sent = seq;
    setStatus(section, "Saving…", "saving", parts);
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ question: id, response: response, seq: seq }),
      credentials: "same-origin",
    }).then((r) => r.json().then((data) => ({ ok: r.ok, status: r.status, data: data })))
      .then((res) => {
        if (res.ok) {
          seqField(section).value = res.data.seq;
          const t = new Date(res.data.saved_at).toLocaleTimeString();
          setStatus(section, res.data.format_error ? "Saved " + t + ", but: " + res.data.format_error : "Saved " + t,
                    res.data.format_error ? "warn" : "ok", parts);
          mark(section, response !== null);
        } else if (res.status === 409 && typeof res.data.seq === "number") {
          // A newer answer was saved in another tab or device: show it, and build on it from now on.
          seqField(section).value = res.data.seq;
          fill(section, res.data.response);
          st.pending = false;
          if (submitter) { submitter = null; section.scrollIntoView(); } // let the student see it before finishing
          setStatus(section, "This answer was changed in another tab or device; the newer answer is shown.", "warn", parts);
          mark(section, res.data.response !== null);
        } else {
          setStatus(section, "Not saved: " + (res.data.error || res.status), "error", parts);
        }
      })
      .catch(() => {
        setStatus(section, "Not saved (offline?). Retrying…", "error", parts);
        parts.forEach((pid) => notePart(section, null, pid)); // the retry carries them again
        setTimeout(() => send(section), 3000);
      })
      .finally(() => {
        st.busy = false;
        inflight -= 1;
        if (submitter) { // a Save is waiting: it posts every field, so no more autosaves
          if (inflight === 0) { const button = submitter; submitter = null; form.requestSubmit(button); }
        } else if (st.pending) send(section);
      });
  }

  function notePart(section, target, pid) { // a part of a multi-part question was changed
    const part = target ? target.closest(".part") : null;
    pid = pid || (part && part.dataset.part);
    if (!pid) return;
    if (!changed.has(section.dataset.id)) changed.set(section.dataset.id, new Set());
    changed.get(section.dataset.id).add(pid);
  }

  const timers = new Map();
  // The Save buttons post the whole form with each question's known seq: first let the saves in
  // flight come back (their seq is adopted), so the form doesn't race this tab's own autosave.
  form.addEventListener("submit", (e) => {
    timers.forEach((t) => clearTimeout(t));
    if (inflight > 0) {
      e.preventDefault();
      submitter = e.submitter || form.querySelector('button[type="submit"]');
    }
  });
  form.addEventListener("change", (e) => {
    const section = e.target.closest(".question");
    if (section) { notePart(section, e.target); send(section); }
  });
  form.addEventListener("input", (e) => {
    const section = e.target.closest(".question");
    if (!section || e.target.type === "radio" || e.target.type === "checkbox") return;
    notePart(section, e.target);
    clearTimeout(timers.get(section));
    timers.set(section, setTimeout(() => send(section), 700));
  });

  // Ordering: move items with buttons (keyboard and mouse); the rank fields stay for no-JS use.
  document.querySelectorAll("ol.ordering").forEach((ol) => {
    ol.classList.add("js");
    ol.querySelectorAll("li").forEach((li) => {
      const up = document.createElement("button");
      up.type = "button"; up.textContent = "↑"; up.className = "move"; up.setAttribute("aria-label", "move up");
      const down = document.createElement("button");
      down.type = "button"; down.textContent = "↓"; down.className = "move"; down.setAttribute("aria-label", "move down");
      li.prepend(down); li.prepend(up);
      up.addEventListener("click", () => { if (li.previousElementSibling) { ol.insertBefore(li, li.previousElementSibling); renumber(ol, up); } });
      down.addEventListener("click", () => { if (li.nextElementSibling) { ol.insertBefore(li.nextElementSibling, li); renumber(ol, down); } });
    });
  });
  function renumber(ol, focus) {
    ol.querySelectorAll("li").forEach((li, k) => { li.querySelector("input.rank").value = k + 1; });
    focus.focus();
    send(ol.closest(".question"));
  }

  // Countdown to the server's expiry time; at zero the server submits what was saved.
  const timer = document.querySelector(".timer");
  if (timer) {
    const end = new Date(timer.dataset.expires).getTime();
    const out = document.getElementById("countdown");
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      const m = Math.floor(left / 60), s = left % 60;
      out.textContent = m + ":" + String(s).padStart(2, "0");
      if (left === 0) { window.location.reload(); return; }
      setTimeout(tick, 1000);
    };
    tick();
  }
})();
