// Durable Diffusion gallery: live refresh of running jobs, selection and comparison.
// No framework and no build: the server renders every page; this only polls and selects.
(function () {
  "use strict";

  // 1. Pages of jobs still running poll themselves and swap in the new <main>.
  function refresh() {
    var page = document.getElementById("page");
    if (!page || !page.dataset.refresh) return;
    setTimeout(function () {
      fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("page");
          if (next) { page.replaceWith(next); bind(); }
          refresh();
        })
        .catch(function () { refresh(); });
    }, Number(page.dataset.refresh) || 2000);
  }

  // 2. Variants: click / Enter / Space toggles selection; shift-click selects a range.
  var last = null;
  function variants() { return Array.prototype.slice.call(document.querySelectorAll(".variant")); }
  function selected() { return variants().filter(function (v) { return v.classList.contains("selected"); }); }
  function update() {
    var button = document.getElementById("compare");
    if (button) button.disabled = selected().length < 2;
  }
  function toggle(figure, shift) {
    var all = variants();
    if (shift && last) {
      var a = all.indexOf(last), b = all.indexOf(figure);
      all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (v) { v.classList.add("selected"); });
    } else {
      figure.classList.toggle("selected");
    }
    last = figure;
    update();
  }

  // 3. Comparison: the selected variants side by side, cloned (no HTML built from strings).
  function compare() {
    var box = document.getElementById("comparison");
    if (!box) return;
    box.textContent = "";
    selected().forEach(function (v) { box.appendChild(v.cloneNode(true)); });
    box.hidden = false;
    box.scrollIntoView({ behavior: "smooth" });
  }

  function bind() {
    variants().forEach(function (figure) {
      figure.addEventListener("click", function (e) {
        if (e.target.closest("details")) return;
        toggle(figure, e.shiftKey);
      });
      figure.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(figure, e.shiftKey); }
      });
    });
    var button = document.getElementById("compare");
    if (button) button.addEventListener("click", compare);
    // The status filter applies as soon as it changes (its button is for pages without script).
    var filter = document.getElementById("status");
    if (filter) filter.addEventListener("change", function () { filter.form.submit(); });
  }

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      variants().forEach(function (v) { v.classList.remove("selected"); });
      var box = document.getElementById("comparison");
      if (box) box.hidden = true;
      update();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    bind(); refresh();
  });
})();
