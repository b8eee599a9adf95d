/* Voronka web form embed: renders the form where this script tag stands and sends it to Voronka. */
(function () {
  "use strict";
  var def = {{ definition|safe }};
  var script = document.currentScript;
  var box = document.createElement("div");
  box.className = "voronka-form";
  if (script && script.parentNode) { script.parentNode.insertBefore(box, script.nextSibling); }
  else { document.body.appendChild(box); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }
  var form = el("form", {novalidate: "novalidate"});
  if (def.title) { form.appendChild(el("h3", {}, def.title)); }
  if (def.description) { form.appendChild(el("p", {}, def.description)); }
  var errors = {};
  def.fields.forEach(function (f) {
    var wrap = el("div", {"class": "voronka-field"});
    wrap.appendChild(el("label", {"for": "voronka-" + f.name}, (f.label || f.name) + (f.required ? " *" : "")));
    var input;
    if (f.type === "textarea") { input = el("textarea", {}); }
    else if (f.type === "select") {
      input = el("select", {});
      input.appendChild(el("option", {value: ""}, "—"));
      (f.options || []).forEach(function (o) { input.appendChild(el("option", {value: o}, o)); });
    } else { input = el("input", {type: f.type || "text"}); }
    input.id = "voronka-" + f.name; input.name = f.name;
    if (f.placeholder) { input.placeholder = f.placeholder; }
    if (f.required) { input.required = true; }
    wrap.appendChild(input);
    errors[f.name] = el("div", {"class": "voronka-error", role: "alert"});
    wrap.appendChild(errors[f.name]);
    form.appendChild(wrap);
  });
  if (def.consent) {
    var consent = el("label", {"class": "voronka-consent"});
    var box2 = el("input", {type: "checkbox", name: "consent", value: "1"});
    consent.appendChild(box2); consent.appendChild(document.createTextNode(" " + def.consent));
    form.appendChild(consent);
    errors.consent = el("div", {"class": "voronka-error", role: "alert"});
    form.appendChild(errors.consent);
  }
  var hp = el("input", {name: def.honeypot, tabindex: "-1", autocomplete: "off", "aria-hidden": "true"});
  hp.style.cssText = "position:absolute;left:-10000px;width:1px;height:1px;";
  form.appendChild(hp);
  var status = el("div", {"class": "voronka-status", role: "status"});
  var button = el("button", {type: "submit"}, def.button);
  form.appendChild(button); form.appendChild(status);
  box.appendChild(form);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    var query = new URLSearchParams(window.location.search);
    def.utm.forEach(function (k) { if (query.get(k)) { data.append(k, query.get(k)); } });
    data.append("referrer", window.location.href);
    Object.keys(errors).forEach(function (k) { errors[k].textContent = ""; });
    button.disabled = true; status.textContent = def.sending;
    // urlencoded like a plain HTML form (the forms have no files): cheaper for the server to parse than multipart;
    // still a «simple» cross-origin request (no OPTIONS preflight)
    fetch(def.action, {method: "POST", body: new URLSearchParams(data), headers: {"Accept": "application/json"},
                       mode: "cors"})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        button.disabled = false;
        if (res.ok) {
          if (res.body.redirect) { window.location.href = res.body.redirect; return; }
          form.innerHTML = ""; form.appendChild(el("p", {"class": "voronka-done"}, res.body.message));
          return;
        }
        status.textContent = res.body.message || def.failed;
        var fields = res.body.fields || {};
        Object.keys(fields).forEach(function (k) { if (errors[k]) { errors[k].textContent = fields[k].join(" "); } });
      })
      .catch(function () { button.disabled = false; status.textContent = def.failed; });
  });
})();
