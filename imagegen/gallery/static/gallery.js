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

  // 4. New job: the form becomes a job for POST /api/jobs; each error lands next to its field.
  function list(value) { return value.split(",").map(function (v) { return v.trim(); }).filter(Boolean); }
  function number(value) { var n = Number(value); return value.trim() !== "" && !isNaN(n) ? n : value.trim(); }
  function readFile(input) {
    var file = input.files && input.files[0];
    if (!file) return Promise.resolve(null);
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = reject;
      reader.readAsDataURL(file);
    });
  }
  function buildJob(form) {
    var rows = Array.prototype.slice.call(form.querySelectorAll("[data-prompt]"));
    return Promise.all(rows.map(function (row) { return readFile(row.querySelector("[name=image]")); }))
      .then(function (images) {
        var job = { name: form.elements.name.value.trim(), prompts: [], variants: {} };
        rows.forEach(function (row, i) {
          var prompt = { text: row.querySelector("[name=text]").value.trim() };
          var negative = row.querySelector("[name=negative]").value.trim();
          var strength = row.querySelector("[name=strength]").value.trim();
          if (negative) prompt.negative = negative;
          if (images[i]) prompt.image = images[i];
          if (strength) prompt.strength = number(strength);
          job.prompts.push(prompt);
        });
        var seeds = form.elements.seeds.value;
        if (seeds.trim()) job.variants.seeds = seeds.indexOf(",") >= 0 ? list(seeds).map(number) : number(seeds);
        if (list(form.elements.styles.value).length) job.variants.styles = list(form.elements.styles.value);
        if (list(form.elements.sizes.value).length) job.variants.sizes = list(form.elements.sizes.value);
        if (form.elements.steps.value.trim()) job.variants.steps = number(form.elements.steps.value);
        return job;
      });
  }
  // The field an error path names: prompts[1].text is that row's text box; variants.sizes[1]
  // is the sizes box; anything else goes to the form's own error line.
  function fieldFor(form, path) {
    var match = /^prompts\[(\d+)\]\.?(\w*)/.exec(path);
    if (match) {
      var row = form.querySelectorAll("[data-prompt]")[Number(match[1])];
      return row && (row.querySelector('[data-path="' + (match[2] || "text") + '"]') || row.querySelector('[data-path="text"]'));
    }
    while (path) {
      var field = form.querySelector('.field[data-path="' + path + '"]');
      if (field) return field;
      var shorter = path.replace(/(\[\d+\]|\.?[^.\[]*)$/, "");
      if (shorter === path) break;
      path = shorter;
    }
    return null;
  }
  function showErrors(form, problem) {
    var general = document.getElementById("form-error");
    var unplaced = [];
    (problem.errors || []).forEach(function (error) {
      var field = fieldFor(form, error.path || "");
      if (!field) { unplaced.push(error.message); return; }
      field.classList.add("invalid");
      var note = document.createElement("p");
      note.className = "error";
      note.dataset.rule = error.rule;
      note.textContent = error.message;
      field.appendChild(note);
    });
    if (!problem.errors || !problem.errors.length) unplaced.push(problem.detail || problem.title || "The job was not accepted.");
    general.textContent = unplaced.join(" ");
    general.hidden = !unplaced.length;
  }
  function bindNewJob() {
    var form = document.getElementById("new-job");
    if (!form) return;
    document.getElementById("add-prompt").addEventListener("click", function () {
      var rows = document.getElementById("prompts");
      var copy = rows.querySelector("[data-prompt]").cloneNode(true);
      copy.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; });
      copy.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      copy.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
      rows.appendChild(copy);
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      form.querySelectorAll(".field .error").forEach(function (el) { el.remove(); });
      form.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      buildJob(form)
        .then(function (job) {
          return fetch("/api/jobs", { method: "POST", credentials: "same-origin",
                                      headers: { "Content-Type": "application/json" }, body: JSON.stringify(job) });
        })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            if (response.status === 202 && body.jobId) {
              location.href = "/api/gallery/jobs/" + encodeURIComponent(body.jobId);
            } else {
              showErrors(form, body);
            }
          });
        })
        .catch(function () { showErrors(form, { detail: "Could not reach the server." }); })
        .then(function () { button.disabled = false; });
    });
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
    bind(); bindNewJob(); refresh();
  });
})();
