"use strict";
// The status page's refresh. It asks the server for this same page again (the URL carries the
// sort, the filter and the page) and swaps in each part the server rendered (data-part):
// it draws nothing and works nothing out, so the view has one home, dashboard.py's `view`
// and dashboard.html. Typing in the filter only changes the URL and refreshes at once.
(function () {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const form = document.getElementById("filters");
  let timer = null;
  let asked = 0; // the newest request: an older answer arriving late is dropped

  function swap(page) {
    const open = new Set([...document.querySelectorAll("#history details[open]")]
      .map((d) => d.dataset.key));
    for (const part of page.querySelectorAll("[data-part]")) {
      const shown = document.getElementById(part.id);
      if (shown && !shown.isEqualNode(part)) shown.replaceWith(document.adoptNode(part));
    }
    for (const d of document.querySelectorAll("#history details")) {
      if (open.has(d.dataset.key)) d.open = true;
    }
    document.title = page.title;
  }

  async function refresh() {
    clearTimeout(timer);
    const mine = ++asked;
    try {
      const response = await fetch(location.href, { cache: "no-store", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`the page answered ${response.status}`);
      const text = await response.text();
      if (mine !== asked) return;
      swap(new DOMParser().parseFromString(text, "text/html"));
    } catch (err) {
      if (mine !== asked) return;
      const updated = document.getElementById("updated");
      updated.className = "stale";
      updated.textContent = `Not updated: ${err.message}. Retrying every ${config.refresh} s.`;
    }
    timer = setTimeout(refresh, config.refresh * 1000);
  }

  function narrow(event) {
    if (event) event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    for (const [key, value] of [...query]) if (!value) query.delete(key);
    history.replaceState(null, "", "?" + query); // a new filter starts at the first page
    refresh();
  }

  form.addEventListener("submit", narrow);
  form.querySelector("#filter-text").addEventListener("input", () => narrow());
  form.querySelector("#filter-state").addEventListener("change", () => narrow());
  timer = setTimeout(refresh, config.refresh * 1000);
})();
