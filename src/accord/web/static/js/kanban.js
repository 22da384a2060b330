/* The pipeline board: drag-and-drop and the keyboard path (each card's stage <select> + Move).
   Loaded as a file (the Content-Security-Policy forbids inline script). A move is posted to the
   REST API with the card's version as If-Match; on 412 the card is reloaded as it now is.
   Plain HTML5 drag-and-drop: the board needs no more than dragging a card onto a column. */
(function () {
  "use strict";

  var board = document.getElementById("kanban");
  if (!board) { return; }
  var statusLine = document.getElementById("board-status");
  var alertBox = document.getElementById("board-alert");
  var dialog = document.getElementById("lost-dialog");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function announce(text) {
    statusLine.textContent = text;
  }

  function showError(text) {
    alertBox.textContent = text;
    alertBox.hidden = false;
  }

  function clearError() {
    alertBox.hidden = true;
    alertBox.textContent = "";
  }

  function columnOf(stageId) {
    return board.querySelector('.kcol[data-stage-id="' + stageId + '"]');
  }

  function cardName(card) {
    var link = card.querySelector(".kcard-name");
    return link ? link.textContent.trim() : "the deal";
  }

  function placeCard(card, stageId) {
    var list = columnOf(stageId).querySelector(".kcol-cards");
    list.insertBefore(card, list.firstElementChild);
  }

  function syncControls(card) {
    var version = card.querySelector('input[name="version"]');
    if (version) { version.value = card.dataset.version; }
    var select = card.querySelector(".kcard-stage");
    if (select) { select.value = card.dataset.stageId; }
  }

  function refreshTotals() {
    return fetch(board.dataset.totalsUrl, {credentials: "same-origin",
                                           headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        Object.keys(data).forEach(function (stageId) {
          var box = board.querySelector('[data-totals-for="' + stageId + '"]');
          if (!box) { return; }
          box.querySelectorAll("[data-total]").forEach(function (el) {
            el.textContent = data[stageId][el.dataset.total];
          });
        });
        board.dispatchEvent(new CustomEvent("kanban:totals", {bubbles: true}));
      });
  }

  function reloadCard(card) {
    var url = "/sales/deals/" + card.dataset.dealId + "/card?next=" +
      encodeURIComponent(board.dataset.here);
    return fetch(url, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { card.remove(); return; }
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.firstElementChild;
        if (fresh.dataset.stageId !== card.dataset.stageId && columnOf(fresh.dataset.stageId)) {
          card.remove();
          placeCard(fresh, fresh.dataset.stageId);
        } else {
          card.replaceWith(fresh);
        }
        fresh.focus();
      });
  }

  // Moving to a lost stage asks why (the API refuses a lost deal without a reason).
  function askLostReason() {
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () {
        if (dialog.returnValue !== "confirm") { resolve(null); return; }
        var note = dialog.querySelector('[name="lost_note"]').value.trim();
        var answer = {lost_reason: dialog.querySelector('[name="lost_reason"]').value};
        if (note) { answer.lost_note = note; }
        resolve(answer);
      }, {once: true});
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  function move(card, stageId) {
    stageId = String(stageId);
    if (card.dataset.stageId === stageId || card.getAttribute("aria-busy") === "true") { return; }
    var target = columnOf(stageId);
    var asked = target.dataset.outcome === "lost" ? askLostReason() : Promise.resolve({});
    asked.then(function (extra) {
      if (extra === null) { syncControls(card); card.focus(); return; }
      var body = Object.assign({stage_id: Number(stageId)}, extra);
      var name = cardName(card);
      card.setAttribute("aria-busy", "true");
      return fetch("/api/v1/deals/" + card.dataset.dealId + "/move", {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "If-Match": '"' + card.dataset.version + '"', "X-CSRF-Token": csrfToken()}
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          card.removeAttribute("aria-busy");
          if (r.ok) {
            clearError();
            card.dataset.version = String(data.version);
            card.dataset.stageId = String(data.stage_id);
            syncControls(card);
            placeCard(card, data.stage_id);
            card.focus();
            announce("Moved " + name + " to " + target.dataset.stageName + ".");
            // the card's facts (probability) follow the new stage: fetch it as it now is
            return Promise.all([refreshTotals(), reloadCard(card)]);
          }
          if (r.status === 412) {
            showError("Someone else changed " + name + " in the meantime, so it was not moved. " +
                      "The card now shows the deal as it is; move it again if you still want to.");
            announce("Not moved: " + name + " was changed by someone else.");
            return reloadCard(card).then(refreshTotals);
          }
          showError("Could not move " + name + ": " + (data.detail || ("error " + r.status)));
          announce("Not moved.");
          syncControls(card);
        });
      }).catch(function () {
        card.removeAttribute("aria-busy");
        syncControls(card);
        showError("Accord could not be reached. Check your connection and try again.");
      });
    });
  }

  // The keyboard (and no-mouse) path: the card's own form.
  board.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("kcard-move")) { return; }
    event.preventDefault();
    move(form.closest(".kcard"), form.querySelector(".kcard-stage").value);
  });

  // Drag and drop.
  var dragged = null;
  board.addEventListener("dragstart", function (event) {
    var card = event.target instanceof Element ? event.target.closest(".kcard-movable") : null;
    if (!card) { return; }
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.dealId);
    card.classList.add("kcard-dragging");
  });
  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("kcard-dragging"); }
    dragged = null;
    board.querySelectorAll(".kcol-over").forEach(function (el) { el.classList.remove("kcol-over"); });
  });
  board.addEventListener("dragover", function (event) {
    var col = event.target instanceof Element ? event.target.closest(".kcol") : null;
    if (!col || !dragged) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    col.classList.add("kcol-over");
  });
  board.addEventListener("dragleave", function (event) {
    var col = event.target instanceof Element ? event.target.closest(".kcol") : null;
    if (col && !col.contains(event.relatedTarget)) { col.classList.remove("kcol-over"); }
  });
  board.addEventListener("drop", function (event) {
    var col = event.target instanceof Element ? event.target.closest(".kcol") : null;
    if (!col || !dragged) { return; }
    event.preventDefault();
    col.classList.remove("kcol-over");
    var card = dragged;
    dragged = null;
    card.classList.remove("kcard-dragging");
    move(card, col.dataset.stageId);
  });
})();
