/* Record pickers (voronka/ui/pickers.py): type a name or a number, choose with the arrows and Enter (or the
   mouse); Escape closes the list and restores the choice; Backspace in an empty box of a multi-value field
   removes the last record. Suggestions come from /pick/<type>/?q= (records the user may read). */
(function () {
  "use strict";

  function init(root) {
    if (root.dataset.ready) { return; }
    root.dataset.ready = "1";
    var box = root.querySelector(".picker-q");
    var list = root.querySelector(".picker-list");
    var idInput = root.querySelector("[data-id]");
    var multiple = root.hasAttribute("data-multiple");
    var chosenTitle = box.value;
    var items = [];
    var active = -1;
    var timer = null;
    var asked = 0;

    function close() {
      list.hidden = true;
      box.setAttribute("aria-expanded", "false");
      box.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(i) {
      var options = list.querySelectorAll("[role=option]");
      options.forEach(function (o, n) { o.setAttribute("aria-selected", n === i ? "true" : "false"); });
      active = i;
      if (i >= 0 && options[i]) {
        box.setAttribute("aria-activedescendant", options[i].id);
        options[i].scrollIntoView({block: "nearest"});
      }
    }

    function show(results) {
      items = results;
      list.innerHTML = "";
      if (!results.length) {
        var none = document.createElement("li");
        none.className = "picker-none";
        none.textContent = root.dataset.none || "—";
        list.appendChild(none);
      }
      results.forEach(function (r, n) {
        var li = document.createElement("li");
        li.id = box.id + "-opt-" + n;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.textContent = r.title;
        if (r.hint) {
          var hint = document.createElement("span");
          hint.className = "muted small";
          hint.textContent = " " + r.hint;
          li.appendChild(hint);
        }
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(n); });
        list.appendChild(li);
      });
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      highlight(results.length ? 0 : -1);
    }

    function ask() {
      var mine = ++asked;
      fetch(root.dataset.url + "?q=" + encodeURIComponent(box.value.trim()), {headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {results: []}; })
        .then(function (d) { if (mine === asked && document.activeElement === box) { show(d.results || []); } });
    }

    function addChip(r) {
      var chips = root.querySelector(".chips");
      if (chips.querySelector('[data-id="' + r.id + '"]')) { return; }
      var li = document.createElement("li");
      li.className = "chip";
      li.dataset.id = r.id;
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = root.dataset.name;
      hidden.value = r.id;
      var x = document.createElement("button");
      x.type = "button";
      x.className = "chip-x";
      x.textContent = "×";
      x.setAttribute("aria-label", "× " + r.title);
      li.appendChild(hidden);
      li.appendChild(document.createTextNode(r.title + " "));
      li.appendChild(x);
      chips.appendChild(li);
    }

    function choose(n) {
      var r = items[n];
      if (!r) { return; }
      if (multiple) {
        addChip(r);
        box.value = "";
      } else {
        idInput.value = r.id;
        box.value = chosenTitle = r.title;
        idInput.dispatchEvent(new Event("change", {bubbles: true}));
      }
      close();
      box.focus();
    }

    box.addEventListener("input", function () {
      if (!multiple && !box.value.trim()) { idInput.value = ""; chosenTitle = ""; }
      clearTimeout(timer);
      timer = setTimeout(ask, 200);
    });
    box.addEventListener("keydown", function (ev) {
      var open = !list.hidden;
      if (ev.key === "ArrowDown") {
        ev.preventDefault();
        if (!open) { ask(); return; }
        highlight(Math.min(active + 1, items.length - 1));
      } else if (ev.key === "ArrowUp") {
        ev.preventDefault();
        if (open) { highlight(Math.max(active - 1, 0)); }
      } else if (ev.key === "Enter") {
        if (open && active >= 0) { ev.preventDefault(); choose(active); }
        else if (open) { ev.preventDefault(); }
      } else if (ev.key === "Escape") {
        if (open) { ev.preventDefault(); close(); if (!multiple) { box.value = chosenTitle; } }
      } else if (ev.key === "Backspace" && multiple && !box.value) {
        var chips = root.querySelectorAll(".chip");
        if (chips.length) { chips[chips.length - 1].remove(); }
      }
    });
    box.addEventListener("blur", function () {
      setTimeout(function () {
        close();
        if (!multiple) {
          if (!box.value.trim()) { idInput.value = ""; chosenTitle = ""; } else { box.value = chosenTitle; }
        } else { box.value = ""; }
      }, 120);
    });
    root.addEventListener("click", function (ev) {
      if (ev.target.classList.contains("chip-x")) { ev.target.closest(".chip").remove(); box.focus(); }
    });
  }

  function scan(node) {
    if (node && node.querySelectorAll) { node.querySelectorAll("[data-picker]").forEach(init); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    scan(document);
    // forms inserted later (the board's «fill in the required fields» dialog, htmx swaps)
    new MutationObserver(function (changes) {
      changes.forEach(function (c) { c.addedNodes.forEach(scan); });
    }).observe(document.body, {childList: true, subtree: true});
  });
})();
