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
      q('input[type="radio"]:checked').forEach((r) => { if (r.value) out[r.name.slice(name.length + 1)] = r.value; });
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
      all('input[type="radio"]').forEach((r) => {
        r.checked = ((response || {})[r.name.slice(name.length + 1)] || "") === r.value;
      });
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

  // The navigator's states and texts (the same as web/templating.py's NAV_TEXT).
  const NAV_TEXT = { answered: "answered", unanswered: "not answered", unreadable: "answer can't be read" };
  function mark(section, answered, formatError) {
    const nav = document.getElementById("nav-" + section.dataset.id);
    const st = !answered ? "unanswered" : formatError ? "unreadable" : "answered";
    if (nav) {
      nav.className = st;
      nav.title = NAV_TEXT[st];
      const sr = nav.querySelector(".sr-only");
      if (sr) sr.textContent = ", " + NAV_TEXT[st];
    }
    // An unreadable answer: its fields are invalid and described by the message (as after a reload).
    const msg = document.getElementById("fe-" + section.dataset.id);
    if (msg) msg.textContent = formatError && answered ? "This answer can't be read: " + formatError + ". It scores 0 as it stands; correct it." : "";
    section.querySelectorAll("input.num, input[aria-invalid]").forEach((i) => {
      i.setAttribute("aria-invalid", formatError && answered ? "true" : "false");
    });
  }

  // Times on this page are hours and minutes in the course's time zone, as the server writes them.
  const clockFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                                                          timeZone: form.dataset.tz || undefined });
  const clock = (iso) => clockFormat.format(new Date(iso));

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
    }).then((r) => r.json().then((data) => ({ ok: r.ok, status: r.status, data: data,
                                              retryAfter: Number(r.headers.get("Retry-After")) || 3 })))
      .then((res) => {
        if (res.ok) {
          seqField(section).value = res.data.seq;
          const t = clock(res.data.saved_at);
          setStatus(section, res.data.format_error ? "Saved at " + t + ", but it can't be read yet" : "Saved at " + t,
                    res.data.format_error ? "warn" : "ok", parts);
          mark(section, response !== null, res.data.format_error);
        } else if (res.status === 409 && typeof res.data.seq === "number") {
          // A newer answer was saved in another tab or device: show it, and build on it from now on.
          seqField(section).value = res.data.seq;
          fill(section, res.data.response);
          st.pending = false;
          if (submitter) { submitter = null; section.scrollIntoView(); } // let the student see it before finishing
          setStatus(section, "This answer was changed in another tab or device; the newer answer is shown.", "warn", parts);
          mark(section, res.data.response !== null, null);
        } else if (res.status === 503) { // the server is busy: the same answer again when it says
          setStatus(section, "Not saved yet (the server is busy). Retrying…", "error", parts);
          parts.forEach((pid) => notePart(section, null, pid));
          setTimeout(() => send(section), 1000 * Math.min(res.retryAfter, 30));
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
  // Enter in an answer field never posts the page (it would jump to the top): it saves that answer.
  form.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.key === "Enter" && t.tagName === "INPUT" && t.type !== "submit" && t.type !== "button") {
      e.preventDefault();
      const section = t.closest(".question");
      if (section) { clearTimeout(timers.get(section)); timers.delete(section); send(section); }
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
    timers.set(section, setTimeout(() => { timers.delete(section); send(section); }, 700));
  });

  // Ordering: drag an entry by its handle (mouse or touch), or move it with its buttons (keyboard);
  // each button names its entry and each move is announced. The rank fields stay for no-JS use.
  function label(li) { return li.dataset.label || li.textContent.trim(); }
  function button(li, dir) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "move " + dir;
    b.textContent = dir === "up" ? "↑" : "↓";
    b.setAttribute("aria-label", "Move '" + label(li) + "' " + dir);
    return b;
  }
  function moved(ol, li, focus) {
    const items = Array.from(ol.querySelectorAll("li"));
    items.forEach((x, k) => { x.querySelector("input.rank").value = k + 1; });
    const live = document.getElementById("moved-" + ol.dataset.question);
    if (live) live.textContent = "'" + label(li) + "' is now at position " + (items.indexOf(li) + 1) + " of " + items.length + ".";
    if (focus) focus.focus();
    send(ol.closest(".question"));
  }
  document.querySelectorAll("ol.ordering").forEach((ol) => {
    ol.classList.add("js");
    ol.querySelectorAll("li").forEach((li) => {
      const up = button(li, "up"), down = button(li, "down");
      const handle = document.createElement("span");
      handle.className = "handle";
      handle.textContent = "⠿";
      handle.setAttribute("aria-hidden", "true"); // the buttons do the same for the keyboard
      li.prepend(handle, up, down);
      up.addEventListener("click", () => {
        if (li.previousElementSibling) { ol.insertBefore(li, li.previousElementSibling); moved(ol, li, up); }
      });
      down.addEventListener("click", () => {
        if (li.nextElementSibling) { ol.insertBefore(li.nextElementSibling, li); moved(ol, li, down); }
      });
      handle.addEventListener("pointerdown", (e) => drag(e, ol, li));
    });
  });
  // Pointer events serve mouse, pen and touch alike (HTML drag and drop does not work on phones).
  function drag(e, ol, li) {
    e.preventDefault();
    const start = Array.from(ol.children).indexOf(li);
    li.classList.add("dragging");
    const move = (ev) => {
      const over = document.elementFromPoint(ev.clientX, ev.clientY);
      const target = over && over.closest("ol.ordering > li");
      if (!target || target === li || target.parentNode !== ol) return;
      const box = target.getBoundingClientRect();
      ol.insertBefore(li, ev.clientY < box.top + box.height / 2 ? target : target.nextElementSibling);
    };
    const end = () => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", end);
      document.removeEventListener("pointercancel", end);
      li.classList.remove("dragging");
      if (Array.from(ol.children).indexOf(li) !== start) moved(ol, li, null);
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", end);
    document.addEventListener("pointercancel", end);
  }

  // Countdown to the server's expiry time in the sticky bar, corrected for this device's clock;
  // warnings at 5 and 1 minute are announced; at zero the saved answers are submitted (the server
  // closes the attempt when its result page is asked for).
  const timer = document.getElementById("timer");
  if (timer) {
    const skew = new Date(timer.dataset.now).getTime() - Date.now(); // server clock minus this device's
    const end = new Date(timer.dataset.expires).getTime();
    const out = document.getElementById("countdown");
    const alert = document.getElementById("time-alert");
    const warned = new Set();
    const say = (text) => { alert.textContent = text; };
    let done = false;
    const finish = () => {
      if (inflight > 0) { setTimeout(finish, 200); return; } // let the last saves land first
      window.location.assign(timer.dataset.result);
    };
    const timeUp = () => setTimeout(finish, 2000); // time for the notice to be read and announced
    const tick = () => {
      const left = Math.max(0, Math.ceil((end - (Date.now() + skew)) / 1000));
      const m = Math.floor(left / 60), s = left % 60;
      out.textContent = m + ":" + String(s).padStart(2, "0");
      for (const limit of [5, 1]) {
        if (left <= limit * 60 && left > 0 && !warned.has(limit)) {
          warned.add(limit);
          timer.classList.add("low");
          say(limit === 1 ? "1 minute left. Your answers are saved as you go." : "5 minutes left.");
        }
      }
      if (left === 0 && !done) {
        done = true;
        timers.forEach((t, section) => { clearTimeout(t); send(section); }); // typed but not yet sent
        timers.clear();
        say("Time is up: submitting your saved answers…");
        form.querySelectorAll("input, button").forEach((x) => { if (x.type !== "hidden") x.disabled = true; });
        timeUp();
        return;
      }
      setTimeout(tick, 1000);
    };
    tick();
  }
})();
