// The review UI's script: keyboard shortcuts, claim on open, decisions without a page load,
// bulk decisions and undo. Every form also works without it. Comment text is never touched here:
// this script only sets textContent, attributes and classes, never innerHTML.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function post(url, fields) {
    var body = new FormData();
    (fields || []).forEach(function (pair) { body.append(pair[0], pair[1]); });
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (response.status === 401) {
          window.location.assign(json.sign_in || "/ui/login");
        }
        return { ok: response.ok, status: response.status, json: json };
      });
    }, function () {
      return { ok: false, status: 0, json: { detail: "The service did not answer; try again." } };
    });
  }

  function formFields(form) {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token") { fields.push([name, value]); }
    });
    return fields;
  }

  function isTyping(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // ---- help dialog ------------------------------------------------------------------------
  var help = document.getElementById("help");
  function openHelp() {
    if (help && !help.open) { help.showModal(); }
  }
  document.querySelectorAll("[data-help]").forEach(function (button) {
    button.addEventListener("click", openHelp);
  });

  // ---- claims ------------------------------------------------------------------------------
  function showClaim(item, result) {
    var line = item.querySelector("[data-claim]");
    var message = result.json.message || result.json.detail || "";
    if (line) { line.textContent = message; }
    item.classList.toggle("held", result.status === 409);
    item.dataset.claimed = result.ok ? "mine" : "";
  }

  // `wanted` says whether the item is still open when the answer comes: if the moderator has
  // moved on meanwhile, the fresh claim is given back at once.
  function claim(item, wanted) {
    return post(item.dataset.url + "/claim").then(function (result) {
      showClaim(item, result);
      if (result.ok && wanted && !wanted()) { release(item); }
      return result;
    });
  }

  function release(item) {
    if (item.dataset.claimed !== "mine" || item.dataset.decided) { return; }
    item.dataset.claimed = "";
    var line = item.querySelector("[data-claim]");
    if (line) { line.textContent = ""; }
    post(item.dataset.url + "/release");
  }

  function releaseOnLeave(getItem) {
    window.addEventListener("pagehide", function () {
      var item = getItem();
      if (item && item.dataset.claimed === "mine" && !item.dataset.decided && navigator.sendBeacon) {
        var body = new FormData();
        body.append("csrf_token", csrf);
        navigator.sendBeacon(item.dataset.url + "/release", body);
      }
    });
  }

  // A claim lasts claim_ttl_seconds: renew the open comment's while the page is shown, and take
  // it again when the page comes back from the back-forward cache (pagehide gave it back).
  function keepClaimed(getItem, seconds) {
    if (seconds > 0) {
      setInterval(function () {
        var item = getItem();
        if (item && item.dataset.claimed === "mine" && !item.dataset.decided && !document.hidden) {
          claim(item, function () { return getItem() === item; });
        }
      }, seconds * 500);
    }
    window.addEventListener("pageshow", function (event) {
      var item = getItem();
      if (event.persisted && item) { claim(item, function () { return getItem() === item; }); }
    });
  }

  // ---- the comment page: claim on open --------------------------------------------------------
  var single = document.querySelector("[data-claim-on-open]");
  if (single) {
    claim(single);
    releaseOnLeave(function () { return single; });
    keepClaimed(function () { return single; }, parseFloat(single.dataset.claimSeconds || "0"));
  }

  // ---- the queue -------------------------------------------------------------------------
  var queue = document.getElementById("queue");
  if (!queue) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "?" && !isTyping(event.target)) { openHelp(); }
    });
    return;
  }

  var undoSeconds = parseFloat(queue.dataset.undoSeconds || "0");
  var bulk = document.getElementById("bulk");
  var undoBar = document.getElementById("undo-bar");
  var current = null;
  var lastDone = null; // {items: [elements], until: ms}
  var undoTimer = null;

  function items() {
    return Array.prototype.slice.call(queue.querySelectorAll(".item")).filter(function (item) {
      return !item.closest("li").hidden;
    });
  }

  function itemByRef(ref) {
    return queue.querySelector('.item[data-ref="' + CSS.escape(ref) + '"]');
  }

  function select(item, options) {
    if (!item || item === current) { return; }
    if (current) {
      current.removeAttribute("aria-current");
      release(current);
    }
    current = item;
    item.setAttribute("aria-current", "true");
    if (!options || options.focus !== false) {
      item.focus({ preventScroll: true });
      item.scrollIntoView({ block: "nearest", behavior: "auto" });
    }
    claim(item, function () { return item === current; });
  }

  function move(step) {
    var list = items();
    if (!list.length) { return; }
    var index = list.indexOf(current);
    var next = index < 0 ? list[0] : list[Math.min(list.length - 1, Math.max(0, index + step))];
    select(next);
  }

  function setError(item, text) {
    var line = item.querySelector("[data-error]");
    if (line) { line.textContent = text || ""; }
  }

  function selectedItems() {
    return items().filter(function (item) { return item.querySelector(".select").checked; });
  }

  function updateSelection() {
    var count = selectedItems().length;
    items().forEach(function (item) {
      item.classList.toggle("selected", item.querySelector(".select").checked);
    });
    var label = bulk && bulk.querySelector("[data-selected-count]");
    if (label) {
      label.textContent = count ? count + " selected" : "Select comments with x or their check boxes.";
    }
  }

  function hide(item, decision) {
    item.dataset.decided = decision;
    item.closest("li").hidden = true;
    item.querySelector(".select").checked = false;
    if (item === current) {
      current.removeAttribute("aria-current");
      current = null;
    }
  }

  function show(item) {
    delete item.dataset.decided;
    item.closest("li").hidden = false;
  }

  // The item to move to once `targets` leave the list: the next one below them, else above.
  function nextAfter(targets) {
    var list = items();
    var last = Math.max.apply(null, targets.map(function (item) { return list.indexOf(item); }));
    var others = function (item) { return targets.indexOf(item) < 0; };
    return list.slice(last + 1).find(others) || list.slice(0, last).reverse().find(others) || null;
  }

  function showUndo(done, message) {
    clearTimeout(undoTimer);
    if (!undoBar || !done.length || undoSeconds <= 0) { return; }
    // Offer undo a little less long than the server allows, so a late click does not fail.
    var seconds = Math.max(1, undoSeconds - 1);
    lastDone = { items: done, until: Date.now() + seconds * 1000 };
    undoBar.querySelector("[data-undo-text]").textContent = message;
    undoBar.hidden = false;
    undoTimer = setTimeout(function () {
      undoBar.hidden = true;
      lastDone = null;
    }, seconds * 1000);
  }

  // Decisions are shown at once (the items leave the list) and put back if the service refuses.
  function settle(result, targets) {
    var failed = result.json.failed || [];
    if (!result.ok) {
      failed = targets.map(function (item) {
        return { ref: item.dataset.ref, detail: result.json.detail || "The decision failed." };
      });
    }
    var done = (result.json.succeeded || []).map(function (entry) { return itemByRef(entry.ref); })
      .filter(Boolean);
    if (done.length) { showUndo(done, result.json.message || "Done."); }
    var refused = failed.map(function (entry) {
      var item = itemByRef(entry.ref);
      if (item) {
        show(item);
        setError(item, entry.detail);
      }
      return item;
    }).filter(Boolean);
    updateSelection();
    if (refused.length) { select(refused[0]); }
  }

  function leave(targets, decision) {
    var next = nextAfter(targets);
    targets.forEach(function (item) { hide(item, decision); });
    if (next) { select(next); }
    updateSelection();
  }

  function decide(item, decision) {
    if (!item || item.dataset.decided) { return; }
    var form = item.querySelector("form.decide");
    var fields = formFields(form).filter(function (pair) { return pair[0] !== "decision"; });
    fields.push(["decision", decision]);
    setError(item, "");
    leave([item], decision);
    post(form.action, fields).then(function (result) { settle(result, [item]); });
  }

  function decideSelection(decision) {
    var chosen = selectedItems();
    if (!chosen.length) {
      var label = bulk.querySelector("[data-selected-count]");
      label.textContent = "Select comments first (x, or their check boxes).";
      return;
    }
    var fields = [["decision", decision], ["reason", bulk.querySelector('[name="reason"]').value]];
    chosen.forEach(function (item) { fields.push(["items", item.dataset.ref]); setError(item, ""); });
    leave(chosen, decision);
    post(bulk.action, fields).then(function (result) { settle(result, chosen); });
  }

  function undo() {
    if (!lastDone || Date.now() > lastDone.until) { return; }
    var targets = lastDone.items;
    lastDone = null;
    clearTimeout(undoTimer);
    var fields = targets.map(function (item) { return ["items", item.dataset.ref]; });
    post("/ui/undo", fields).then(function (result) {
      var restored = (result.json.succeeded || []).map(function (entry) { return itemByRef(entry.ref); })
        .filter(Boolean);
      restored.forEach(function (item) {
        show(item);
        item.dataset.claimed = "mine";
      });
      (result.json.failed || []).forEach(function (entry) {
        var item = itemByRef(entry.ref);
        if (item) { setError(item, entry.detail); }
      });
      undoBar.querySelector("[data-undo-text]").textContent =
        result.json.message || result.json.detail || "Too late to undo.";
      undoTimer = setTimeout(function () { undoBar.hidden = true; }, 4000);
      if (restored.length) { select(restored[0]); }
    });
  }

  // Forms: decide without a page load.
  queue.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("decide") || !event.submitter) { return; }
    event.preventDefault();
    var item = form.closest(".item");
    select(item, { focus: false });
    decide(item, event.submitter.value);
  });
  if (bulk) {
    bulk.addEventListener("submit", function (event) {
      event.preventDefault();
      if (event.submitter) { decideSelection(event.submitter.value); }
    });
  }
  if (undoBar) { undoBar.querySelector("[data-undo]").addEventListener("click", undo); }
  queue.addEventListener("change", function (event) {
    if (event.target.classList.contains("select")) { updateSelection(); }
  });
  queue.addEventListener("click", function (event) {
    var item = event.target.closest(".item");
    if (item && item !== current) { select(item, { focus: !isTyping(event.target) && !event.target.closest("a,button,summary,label") }); }
  });
  queue.addEventListener("keydown", function (event) {
    // Enter in a reason field would submit the form; Escape leaves the field for the shortcuts.
    if (event.target.matches("[data-reason]") && event.key === "Enter") { event.preventDefault(); }
    if (isTyping(event.target) && event.key === "Escape") {
      var item = event.target.closest(".item");
      if (item) { item.focus(); }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) { return; }
    if (help && help.open) { return; }
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": decide(current, "approve"); break;
      case "r": decide(current, "reject"); break;
      case "A": decideSelection("approve"); break;
      case "R": decideSelection("reject"); break;
      case "u": undo(); break;
      case "x":
        if (current) {
          var box = current.querySelector(".select");
          box.checked = !box.checked;
          updateSelection();
        }
        break;
      case "e":
        if (current) {
          var details = current.querySelector("details");
          details.open = true;
          current.querySelector("[data-reason]").focus();
        }
        break;
      case "o":
        if (current) { window.location.assign(current.dataset.url); }
        break;
      case "?": openHelp(); break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

  releaseOnLeave(function () { return current; });
  keepClaimed(function () { return current; }, parseFloat(queue.dataset.claimSeconds || "0"));
  updateSelection();
  if (items().length) { select(items()[0], { focus: false }); }
})();
