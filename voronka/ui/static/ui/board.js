/* Kanban drag and drop and the "fill in the required fields" dialog. No library: HTML5 drag events. */
(function () {
  "use strict";
  var csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";

  function toast(text, bad) {
    var t = document.getElementById("toast");
    if (!t) { alert(text); return; }
    t.textContent = text;
    t.className = "show" + (bad ? " bad" : "");
    clearTimeout(t._timer);
    t._timer = setTimeout(function () { t.className = ""; }, 4000);
  }

  function post(url, data) {
    return fetch(url, {method: "POST", body: data, credentials: "same-origin",
                       headers: {"X-CSRFToken": csrf, "Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (d) { return {ok: r.ok, status: r.status, data: d}; }); });
  }

  // A dialog asking for the fields a stage requires; resubmits the move with them.
  function ask(html, onDone, onCancel) {
    var dialog = document.getElementById("move-dialog");
    var body = document.getElementById("move-dialog-body");
    body.innerHTML = html;
    var form = body.querySelector("form");
    var first = form.querySelector("input, select, textarea");
    form.querySelector("[data-cancel]").addEventListener("click", function () { dialog.close(); if (onCancel) onCancel(); });
    dialog.addEventListener("cancel", function () { if (onCancel) onCancel(); }, {once: true});
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(form);
      data.append("stage", form.dataset.stage);
      data.append("with_fields", "1");
      post(moveUrl(form.dataset.id), data).then(function (res) {
        if (res.ok) { dialog.close(); onDone(res.data); }
        else if (res.data.needs_fields) { ask(res.data.html, onDone, onCancel); }
        else { toast(res.data.message, true); }
      });
    });
    if (!dialog.open) dialog.showModal();
    if (first) first.focus();
  }

  function moveUrl(id) {
    var board = document.getElementById("board");
    var base = board ? board.dataset.moveUrl : window.location.pathname.replace(/\/$/, "") + "/move/";
    return board ? base.replace("/0/", "/" + id + "/") : base;
  }

  window.VoronkaMove = {ask: ask};

  var board = document.getElementById("board");
  if (!board) return;
  var dragged = null, origin = null, next = null;

  function count(column, delta) {
    var el = column.querySelector("[data-count]");
    if (el) el.textContent = String(Math.max(0, parseInt(el.textContent, 10) + delta));
  }

  function snapBack() {
    if (!dragged || !origin) return;
    origin.insertBefore(dragged, next && next.parentNode === origin ? next : origin.firstChild);
  }

  function drop(card, targetCards) {
    var from = card.closest(".column"), to = targetCards.closest(".column");
    if (from === to) return;
    origin = card.parentNode; next = card.nextSibling; dragged = card;
    targetCards.insertBefore(card, targetCards.firstChild);
    var data = new FormData();
    data.append("stage", to.dataset.stage);
    post(moveUrl(card.dataset.id), data).then(function (res) {
      // a card dropped on another pipeline leaves this board
      function done(d) { count(from, -1); count(to, 1); card.dataset.stage = to.dataset.stage; if (to.dataset.away) card.remove(); toast(d.message); }
      if (res.ok) { done(res.data); return; }
      if (res.data.needs_fields) {
        ask(res.data.html, done, snapBack);
        return;
      }
      snapBack();
      toast(res.data.message, true);
    }).catch(function () { snapBack(); toast("Network error", true); });
  }

  board.addEventListener("dragstart", function (ev) {
    var card = ev.target.closest(".kcard");
    if (!card) return;
    ev.dataTransfer.setData("text/plain", card.dataset.id);
    ev.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
  });
  board.addEventListener("dragend", function (ev) {
    var card = ev.target.closest(".kcard");
    if (card) card.classList.remove("dragging");
    document.querySelectorAll(".drop-here").forEach(function (el) { el.classList.remove("drop-here"); });
  });
  function dropTarget(area) {  // the board's columns, and the «move to another pipeline» zones under it
    if (!area) return;
    area.addEventListener("dragover", function (ev) {
      var cards = ev.target.closest("[data-drop]");
      if (!cards) return;
      ev.preventDefault();
      cards.classList.add("drop-here");
    });
    area.addEventListener("dragleave", function (ev) {
      var cards = ev.target.closest("[data-drop]");
      if (cards && !cards.contains(ev.relatedTarget)) cards.classList.remove("drop-here");
    });
    area.addEventListener("drop", function (ev) {
      var cards = ev.target.closest("[data-drop]");
      if (!cards) return;
      ev.preventDefault();
      cards.classList.remove("drop-here");
      var id = ev.dataTransfer.getData("text/plain");
      var card = board.querySelector('.kcard[data-id="' + id + '"]');
      if (card) drop(card, cards);
    });
  }
  dropTarget(board);
  dropTarget(document.getElementById("board-away"));
  // Keyboard: focus a card, then Alt+→ / Alt+← moves it to the next / previous stage.
  board.addEventListener("keydown", function (ev) {
    var card = ev.target.closest(".kcard");
    if (!card || !ev.altKey || (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft")) return;
    ev.preventDefault();
    var column = card.closest(".column");
    var target = ev.key === "ArrowRight" ? column.nextElementSibling : column.previousElementSibling;
    if (target) { drop(card, target.querySelector("[data-drop]")); card.focus(); }
  });
})();
