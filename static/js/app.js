// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  function byName(form, name) { return form.querySelector('[name="' + name + '"]'); }

  // Paste an image URI: ask the server to decode it and fill the form's fields.
  function setupPaste() {
    var box = document.getElementById("paste-uri");
    // The console's form, or the same fields in the admin's change form.
    var form = document.getElementById("instance-form") || document.getElementById("containerinstance_form");
    if (!box || !form) { return; }
    var errorBox = document.getElementById("paste-uri-error");
    var help = document.getElementById("registry-kind-help");
    function decode(text) {
      text = text.trim();
      if (!text) { return; }
      var url = box.dataset.decodeUrl + "?uri=" + encodeURIComponent(text);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
        .then(function (result) {
          var ok = result[0], body = result[1];
          if (!ok) {
            box.classList.add("is-invalid");
            errorBox.hidden = false;
            errorBox.textContent = (body.error && body.error.message) || "This is not an image reference.";
            return;
          }
          box.classList.remove("is-invalid");
          errorBox.hidden = true;
          errorBox.textContent = "";
          var fields = { image_name: body.image_name, image_tag: body.image_tag, registry_url: body.registry_url };
          if (body.registry_username) { fields.registry_username = body.registry_username; }
          Object.keys(fields).forEach(function (name) {
            var input = byName(form, name);
            if (input && fields[name] !== null && fields[name] !== undefined) {
              input.value = fields[name];
              input.dispatchEvent(new Event("change", { bubbles: true }));
            }
          });
          showKind(body);
        })
        .catch(function () {
          errorBox.hidden = false;
          errorBox.textContent = "The URI could not be decoded right now; fill the fields by hand.";
        });
    }
    box.addEventListener("paste", function () { setTimeout(function () { decode(box.value); }, 0); });
    box.addEventListener("change", function () { decode(box.value); });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); decode(box.value); }
    });
    // The detected registry kind and its help, live, as the image name changes.
    var awsBox = document.getElementById("aws-fields");
    function showKind(body) {
      if (help) { help.textContent = body.help ? (body.kind_label + ": " + body.help) : ""; }
      if (awsBox) { awsBox.hidden = !(body.kind === "ecr" || body.kind === "ecr-public"); }
    }
    var timer = null;
    function refreshKind() {
      var value = (byName(form, "image_name") || {}).value || "";
      if (!value.trim()) { return; }
      fetch(box.dataset.decodeUrl + "?uri=" + encodeURIComponent(value.trim()), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) { if (body) { showKind(body); } })
        .catch(function () {});
    }
    // A full URI pasted into the image name field gets the same treatment.
    var imageName = byName(form, "image_name");
    if (imageName) {
      imageName.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refreshKind, 300); });
      imageName.addEventListener("change", refreshKind);
      refreshKind();
      imageName.addEventListener("paste", function () {
        setTimeout(function () {
          var value = imageName.value.trim();
          if (/[:@]/.test(value.split("/").pop()) || /^(docker pull |https?:\/\/)/.test(value)) { decode(value); }
        }, 0);
      });
    }
  }

  // "Check access": ask the registry through the daemon, before saving.
  function setupCheck() {
    var button = document.getElementById("check-access");
    var form = document.getElementById("instance-form");
    if (!button || !form) { return; }
    var out = document.getElementById("check-result");
    function line(cls, text) {
      var div = document.createElement("div");
      div.className = cls;
      div.textContent = text;
      return div;
    }
    // The gateway's agent did not answer while the POST waited: ask for the answer until it comes (a minute).
    function waitForAnswer(body, deadline) {
      out.replaceChildren(line("text-body-secondary", body.message));
      if (!body.poll_url || Date.now() > deadline) {
        return { error: { code: "no_answer", message: "The gateway's agent has not answered; try again later." } };
      }
      return fetch(body.poll_url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (next) {
          next.password_note = next.password_note || body.password_note;
          if (!next.pending) { return next; }
          next.poll_url = next.poll_url || body.poll_url;
          return waitForAnswer(next, deadline);
        });
    }
    function show(body) {
      out.replaceChildren();
      if (body.error) {
        out.appendChild(line("alert alert-danger py-2 mb-0", body.error.code + ": " + body.error.message));
        return;
      }
      var ok = body.supported !== false;
      out.appendChild(line("alert py-2 mb-0 " + (ok ? "alert-success" : "alert-warning"),
        (ok ? "\u2714 Access works. " : "\u26a0 Access works, but no variant for this gateway. ") +
        "Digest " + body.digest + " (" + body.media_type + "). Platforms: " + body.platforms.join(", ") +
        ". This gateway: " + body.gateway_platform + "."));
      if (body.password_note) { out.appendChild(line("form-text", body.password_note)); }
    }
    button.addEventListener("click", function () {
      var data = new FormData(form);
      if (form.dataset.instance) { data.set("instance", form.dataset.instance); }
      button.disabled = true;
      out.replaceChildren(line("text-body-secondary", "Checking\u2026"));
      fetch(form.dataset.checkUrl, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") || "", "Accept": "application/json" }
      })
        .then(function (response) { return response.json(); })
        .then(function (body) { return body.pending ? waitForAnswer(body, Date.now() + 60000) : body; })
        .then(show)
        .catch(function () { out.replaceChildren(line("text-danger", "The check could not run; try again.")); })
        .finally(function () { button.disabled = false; });
    });
  }

  // Footer: health of the Docker daemon, task queue and database.
  function setupHealth() {
    var box = document.getElementById("health");
    if (!box) { return; }
    function refresh() {
      fetch(box.dataset.healthUrl, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (report) {
          Object.keys(report.checks || {}).forEach(function (name) {
            var span = box.querySelector('[data-check="' + name + '"]');
            if (!span) { return; }
            var check = report.checks[name];
            span.classList.toggle("ok", check.ok);
            span.classList.toggle("down", !check.ok);
            span.textContent = check.ok ? "up" : "down";
            span.title = check.detail || "";
          });
        })
        .catch(function () {});
    }
    refresh();
    setInterval(refresh, 30000);
  }

  document.addEventListener("DOMContentLoaded", function () { setupPaste(); setupCheck(); setupHealth(); });
})();
