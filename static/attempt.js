// Autosave for the attempt page: every change is sent for its own question, in order, with an
// increasing seq (a stale tab's older answer is refused by the server). The page works without
// this script: the Save button posts the whole form.
(function () {
  "use strict";
  const form = document.getElementById("attempt");
  if (!form) return;
  const url = form.dataset.autosave;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const state = new Map(); // question id -> {busy, pending, lastSeq}

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
    if (type === "numeric") {
      const single = section.querySelector('input[name="' + name + '"]');
      if (single) return single.value.trim() || null;
      const cells = Array.from(q("input.num"));
      if (cells.every((c) => !c.value.trim())) return null;
      const shape = section.querySelector(".grid").dataset.shape.split(",").map(Number);
      if (shape.length === 1) return cells.map((c) => c.value.trim());
      const rows = Array.from({ length: shape[0] }, () => []);
      cells.forEach((c) => { rows[Number(c.dataset.i)][Number(c.dataset.j)] = c.value.trim(); });
      return rows;
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

  function setStatus(section, text, cls) {
    const s = section.querySelector(".status");
    s.textContent = text;
    s.className = "status " + (cls || "");
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
    const st = state.get(id) || { busy: false, pending: false, lastSeq: parseInt(section.dataset.seq, 10) || 0 };
    state.set(id, st);
    if (st.busy) { st.pending = true; return; }
    st.busy = true;
    st.pending = false;
    const response = value(section);
    const seq = Math.max(Date.now(), st.lastSeq + 1);
    st.lastSeq = seq;
    setStatus(section, "Saving…", "saving");
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ question: id, response: response, seq: seq }),
      credentials: "same-origin",
    }).then((r) => r.json().then((data) => ({ ok: r.ok, status: r.status, data: data })))
      .then((res) => {
        if (res.ok) {
          const t = new Date(res.data.saved_at).toLocaleTimeString();
          setStatus(section, res.data.format_error ? "Saved " + t + ", but: " + res.data.format_error : "Saved " + t,
                    res.data.format_error ? "warn" : "ok");
          mark(section, response !== null);
        } else {
          setStatus(section, "Not saved: " + (res.data.error || res.status), "error");
        }
      })
      .catch(() => {
        setStatus(section, "Not saved (offline?). Retrying…", "error");
        st.pending = true;
        setTimeout(() => send(section), 3000);
      })
      .finally(() => {
        st.busy = false;
        if (st.pending) send(section);
      });
  }

  const timers = new Map();
  form.addEventListener("change", (e) => {
    const section = e.target.closest(".question");
    if (section) send(section);
  });
  form.addEventListener("input", (e) => {
    const section = e.target.closest(".question");
    if (!section || e.target.type === "radio" || e.target.type === "checkbox") return;
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
