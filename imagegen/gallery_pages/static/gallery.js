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
          // A job that now awaits review arrives with the review bar: bind it too.
          if (next) { page.replaceWith(next); bind(); bindReview(); }
          refresh();
        })
        .catch(function () { refresh(); });
    }, Number(page.dataset.refresh) || 2000);
  }

  // 2. Variants: click / Enter / Space toggles selection; shift-click selects a range.
  var last = null;
  function variants() { return Array.prototype.slice.call(document.querySelectorAll(".variant")); }
  function selected() { return variants().filter(function (v) { return v.classList.contains("selected"); }); }
  function undecidedSelection() {
    return selected().filter(function (v) { return v.dataset.decision === "undecided"; });
  }
  function update() {
    var button = document.getElementById("compare");
    if (button) button.disabled = selected().length < 2;
    var panel = document.getElementById("review");
    if (!panel) return;
    var open = undecidedSelection().length, all = selected().length;
    document.getElementById("selection").textContent = all === 0 ? "No images selected"
      : all + " selected" + (open < all ? " (" + open + " undecided)" : "");
    document.getElementById("approve").disabled = open === 0;
    document.getElementById("reject").disabled = open === 0;
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

  // 4. Review: approve / reject the selected undecided images with a note, or finish. The
  //    decision is sent to POST /api/jobs/{id}/review; the page then follows the manifest
  //    until the decision has landed and updates badges and counts in place (no reload).
  function say(text, isError) {
    var line = document.getElementById("review-message");
    line.textContent = text;
    line.classList.toggle("error", !!isError);
  }
  function problemText(body) {
    var errors = (body && body.errors) || [];
    if (errors.length) return errors.map(function (e) { return e.message; }).join(" ");
    return (body && (body.detail || body.title)) || "The decision was not accepted.";
  }
  function applyManifest(manifest) {
    manifest.variants.forEach(function (v) {
      var figure = document.querySelector('.variant[data-variant="' + CSS.escape(v.id) + '"]');
      if (!figure || !v.review) return;
      var decision = v.review.decision;
      figure.dataset.decision = decision;
      figure.classList.remove("d-undecided", "selected");
      figure.classList.add("d-" + decision);
      var badge = figure.querySelector(".decision");
      badge.textContent = decision;
      badge.title = decision + " by " + (v.review.reviewer || "the timeout") + (v.review.note ? ": " + v.review.note : "");
    });
    ["approved", "rejected", "undecided"].forEach(function (key) {
      var count = document.querySelector('[data-count="' + key + '"]');
      if (count) count.textContent = manifest.totals[key];
    });
    if (manifest.review && manifest.review.state !== "awaiting") {
      var status = document.getElementById("job-status");
      if (status) { status.textContent = manifest.status; status.className = "status s-" + manifest.status; }
      document.getElementById("review").querySelectorAll("button, input").forEach(function (el) { el.disabled = true; });
      say("The review has ended (" + (manifest.review.ended_by || manifest.review.state) + ").");
    }
    update();
  }
  function follow(job, ids, finish, tries) {
    fetch("/api/jobs/" + encodeURIComponent(job) + "/manifest", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (manifest) {
        var landed = manifest.variants.filter(function (v) { return ids.indexOf(v.id) >= 0 && v.review; }).length;
        var over = manifest.review && manifest.review.state !== "awaiting";
        if (landed === ids.length && (!finish || over)) {
          applyManifest(manifest);
          if (!over) say(ids.length + " decision" + (ids.length === 1 ? "" : "s") + " recorded.");
        } else if (tries > 0) {
          setTimeout(function () { follow(job, ids, finish, tries - 1); }, 700);
        } else {
          say("Sent; it is taking a while to land: reload the page to see it.");
        }
      })
      .catch(function () { if (tries > 0) setTimeout(function () { follow(job, ids, finish, tries - 1); }, 700); });
  }
  function decide(kind) {
    var panel = document.getElementById("review");
    var ids = kind === "finish" ? [] : undecidedSelection().map(function (v) { return v.dataset.variant; });
    var body = { approve: [], reject: [], note: document.getElementById("note").value.trim() };
    if (kind === "finish") body.finish = true; else body[kind] = ids;
    var reviewer = document.getElementById("reviewer");
    if (reviewer) {
      body.reviewer = reviewer.value.trim();
      try { localStorage.setItem("reviewer", body.reviewer); } catch (e) { /* private mode */ }
    }
    var buttons = panel.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    say("Sending…");
    fetch("/api/jobs/" + encodeURIComponent(panel.dataset.job) + "/review", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.status === 202) {
          document.getElementById("note").value = "";
          say("Sent; waiting for it to land…");
          follow(panel.dataset.job, answer.approve.concat(answer.reject), !!answer.finish, 40);
        } else {
          say(problemText(answer), true);
        }
      });
    }).catch(function () { say("Could not reach the server.", true); })
      .then(function () { document.getElementById("finish").disabled = false; update(); });
  }
  // Other reviewers' decisions, and the timeout's, appear as they land: while the review is
  // open, the page reads the manifest every few seconds (one watcher per page).
  var watching = null;
  function watch(job) {
    if (watching === job) return;
    watching = job;
    (function next() {
      setTimeout(function () {
        var panel = document.getElementById("review");
        if (!panel || panel.dataset.job !== job) { watching = null; return; }
        fetch("/api/jobs/" + encodeURIComponent(job) + "/manifest", { credentials: "same-origin", cache: "no-store" })
          .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
          .then(function (manifest) {
            applyManifest(manifest);
            if (!manifest.review || manifest.review.state === "awaiting") next(); else watching = null;
          })
          .catch(next);
      }, WATCH_MS);
    })();
  }
  var WATCH_MS = 3000;
  function bindReview() {
    var panel = document.getElementById("review");
    if (!panel) return;
    watch(panel.dataset.job);
    var reviewer = document.getElementById("reviewer");
    if (reviewer) { try { reviewer.value = localStorage.getItem("reviewer") || ""; } catch (e) { /* private mode */ } }
    document.getElementById("approve").addEventListener("click", function () { decide("approve"); });
    document.getElementById("reject").addEventListener("click", function () { decide("reject"); });
    document.getElementById("finish").addEventListener("click", function () { decide("finish"); });
    update();
  }

  // 5. New job: the form becomes a job for POST /api/jobs; each error lands next to its field.
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
        if (form.elements.model && form.elements.model.value) job.model = form.elements.model.value;
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
        if (form.elements.requires_review.checked) {
          job.review = { required: true };
          if (form.elements.review_timeout.value.trim()) job.review.timeout = form.elements.review_timeout.value.trim();
        }
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
    // Sizes and steps left empty get the chosen model's defaults: show them as placeholders.
    var model = form.elements.model;
    if (model) model.addEventListener("change", function () {
      var chosen = model.options[model.selectedIndex];
      if (chosen.dataset.size) form.elements.sizes.placeholder = "the model's: " + chosen.dataset.size;
      if (chosen.dataset.steps) form.elements.steps.placeholder = chosen.dataset.steps;
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
    bind(); bindReview(); bindNewJob(); refresh();
  });
})();
