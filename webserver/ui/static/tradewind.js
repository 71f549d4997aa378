// Tradewind web UI: small enhancements over server-rendered pages. Every page works
// without this script; with it, times are local, running work refreshes in place,
// logs follow, the grid is keyboard-navigable and toggles need no reload.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";
  const refreshMs = Number(document.body.dataset.refreshMs || 0);
  const pad = (n) => String(n).padStart(2, "0");

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
        `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    });
  }

  function enhanceForms(root) {
    root.querySelectorAll("[data-autosubmit]").forEach((el) => {
      el.addEventListener("change", () => el.form && el.form.requestSubmit());
    });
    root.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    root.querySelectorAll("form[data-toggle-pause]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const button = form.querySelector("button");
        const field = form.querySelector("input[name=paused]");
        button.disabled = true;
        try {
          const response = await fetch(form.action, {
            method: "POST",
            body: new FormData(form),
            headers: { Accept: "application/json", "X-CSRF-Token": csrf },
            credentials: "same-origin",
          });
          if (response.ok) {
            const body = await response.json();
            button.setAttribute("aria-checked", body.is_paused ? "false" : "true");
            button.title = body.is_paused ? "Paused: click to unpause" : "Active: click to pause";
            field.value = body.is_paused ? "false" : "true";
          }
        } finally {
          button.disabled = false;
        }
      });
    });
    root.querySelectorAll("input[data-utc]").forEach((field) => {
      // The server's default is in UTC; show it in the viewer's zone.
      const d = new Date(`${field.dataset.utc}Z`);
      if (isNaN(d) || field.value !== field.dataset.utc) return;
      field.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
        `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    });
    root.querySelectorAll("input[data-tz-offset]").forEach((field) => {
      field.form.addEventListener("submit", () => {
        const chosen = field.form.querySelector("input[name=logical_date]");
        const when = chosen && chosen.value ? new Date(chosen.value) : new Date();
        field.value = String(when.getTimezoneOffset());
      });
    });
  }

  // --- the grid: folding groups, opening cells, arrow keys ---------------------------
  function foldKey(grid) { return `tradewind-folded:${grid.dataset.dagId}`; }
  function folded(grid) {
    try { return new Set(JSON.parse(sessionStorage.getItem(foldKey(grid)) || "[]")); }
    catch (_) { return new Set(); }
  }
  function applyFolds(grid) {
    const closed = folded(grid);
    grid.querySelectorAll("tr[data-groups]").forEach((row) => {
      const hidden = row.dataset.groups.split(" ").some((g) => closed.has(g));
      row.classList.toggle("hidden", hidden);
    });
    grid.querySelectorAll("tr.group").forEach((row) => {
      const button = row.querySelector(".fold");
      if (button) button.setAttribute("aria-expanded", closed.has(row.dataset.group) ? "false" : "true");
    });
  }
  function cellUrl(table, cell) {
    const row = cell.parentElement;
    const header = table.tHead.rows[0].cells[cell.cellIndex];
    if (!header || !header.dataset.run) return null;
    const dag = encodeURIComponent(table.closest("[data-dag-id]").dataset.dagId);
    const run = encodeURIComponent(header.dataset.run);
    if (row.classList.contains("group")) return `/dags/${dag}/runs/${run}`;
    return `/dags/${dag}/runs/${run}/tasks/${encodeURIComponent(row.dataset.task)}`;
  }
  function enhanceGrid(root) {
    const grid = root.id === "grid" ? root : root.querySelector("#grid");
    if (!grid) return;
    applyFolds(grid);
    const table = grid.querySelector("table.grid");
    if (!table) return;
    table.addEventListener("click", (event) => {
      const fold = event.target.closest(".fold");
      if (fold) {
        const closed = folded(grid);
        const group = fold.closest("tr").dataset.group;
        closed.has(group) ? closed.delete(group) : closed.add(group);
        sessionStorage.setItem(foldKey(grid), JSON.stringify([...closed]));
        applyFolds(grid);
        return;
      }
      const cell = event.target.closest("td.c");
      const url = cell && cellUrl(table, cell);
      if (url) window.location.href = url;
    });
    table.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      let cursor = table.querySelector("td.c.cursor");
      if (event.key === "Enter" && cursor) {
        const url = cellUrl(table, cursor);
        if (url) window.location.href = url;
        return;
      }
      const move = moves[event.key];
      if (!move) return;
      event.preventDefault();
      const rows = [...table.tBodies[0].rows].filter((r) => !r.classList.contains("hidden"));
      if (!rows.length) return;
      let r = cursor ? rows.indexOf(cursor.parentElement) : 0;
      let c = cursor ? cursor.cellIndex : rows[0].cells.length - 1;
      if (cursor) { r += move[0]; c += move[1]; }
      r = Math.max(0, Math.min(rows.length - 1, r));
      c = Math.max(1, Math.min(rows[r].cells.length - 1, c));
      if (cursor) cursor.classList.remove("cursor");
      cursor = rows[r].cells[c];
      cursor.classList.add("cursor");
      cursor.scrollIntoView({ block: "nearest", inline: "nearest" });
      const header = table.tHead.rows[0].cells[c];
      table.setAttribute("aria-label", `${rows[r].dataset.task} in ${header.dataset.run}: ${cursor.className.replace(/.*s-/, "") || "no status"}`);
    });
  }

  function enhance(root) {
    localTimes(root);
    enhanceForms(root);
    enhanceGrid(root);
  }

  // --- live parts: re-fetched while they show running work ----------------------------
  async function refresh(element) {
    if (document.hidden) return element;
    const response = await fetch(element.dataset.refresh, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return element;
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(element.id);
    if (!fresh) return element;
    const open = new Set([...element.querySelectorAll("details[open][id]")].map((d) => d.id));
    const scrolls = [...element.querySelectorAll(".scroller[id]")].map((s) => [s.id, s.scrollLeft, s.scrollTop]);
    const adopted = document.importNode(fresh, true);
    adopted.querySelectorAll("details[id]").forEach((d) => { if (open.has(d.id)) d.open = true; });
    element.replaceWith(adopted);
    scrolls.forEach(([id, left, top]) => {
      const s = document.getElementById(id);
      if (s) { s.scrollLeft = left; s.scrollTop = top; }
    });
    enhance(adopted);
    return adopted;
  }
  function keepFresh(element) {
    if (!refreshMs || element.dataset.live !== "true") return;
    const id = element.id;
    const tick = async () => {
      let current = document.getElementById(id);
      if (!current) return;
      try { current = await refresh(current); } catch (_) { /* offline for a moment */ }
      // One more look after the work ends, so the final states show.
      if (current.dataset.live === "true") setTimeout(tick, refreshMs);
    };
    setTimeout(tick, refreshMs);
  }

  // --- the live log --------------------------------------------------------------------
  function followLog() {
    const log = document.getElementById("log");
    if (!log) return;
    const follow = document.getElementById("log-follow");
    const wrap = document.getElementById("log-wrap");
    const status = document.getElementById("log-status");
    if (wrap) wrap.addEventListener("change", () => log.classList.toggle("wrap", wrap.checked));
    if (follow && follow.checked) log.scrollTop = log.scrollHeight;
    let token = log.dataset.token;
    if (!token || !refreshMs) return;
    const tick = async () => {
      try {
        const url = `${log.dataset.logUrl}&token=${encodeURIComponent(token)}`;
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) {
          const body = await response.json();
          if (body.lines.length) {
            log.append(document.createTextNode(body.lines.join("\n") + "\n"));
            if (follow && follow.checked) log.scrollTop = log.scrollHeight;
          }
          token = body.token;
        }
      } catch (_) { /* try again on the next tick */ }
      if (token) setTimeout(tick, refreshMs);
      else if (status) status.textContent = "The try has ended.";
    };
    setTimeout(tick, refreshMs);
  }

  enhance(document);
  document.querySelectorAll("[data-refresh]").forEach(keepFresh);
  followLog();
})();
