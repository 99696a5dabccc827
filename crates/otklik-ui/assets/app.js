// Otklik agent workspace: keyboard shortcuts, live refresh and small conveniences.
// Loaded as a file (the Content-Security-Policy forbids inline script), after htmx.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // htmx requests that change state carry the session's CSRF token.
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (csrf) {
      event.detail.headers["X-CSRF-Token"] = csrf;
    }
  });

  // Show times in the browser's time zone and the page's language.
  function localizeTimes(root) {
    var lang = document.documentElement.lang || "ru";
    var format;
    try {
      format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    } catch (ignored) {
      return;
    }
    root.querySelectorAll("time[datetime]").forEach(function (element) {
      var date = new Date(element.getAttribute("datetime"));
      if (!isNaN(date.getTime())) {
        element.title = element.textContent;
        element.textContent = format.format(date);
      }
    });
  }
  localizeTimes(document);
  document.body.addEventListener("htmx:afterSwap", function (event) {
    localizeTimes(event.detail.elt.parentNode || document);
    restoreSelection();
  });

  // Live updates: the server announces changed ticket ids; the page refetches what it shows.
  if (document.body.dataset.live && window.EventSource) {
    var ticketId = document.body.dataset.ticketId;
    var source = new EventSource("/events");
    source.addEventListener("change", function (message) {
      var change = {};
      try {
        change = JSON.parse(message.data);
      } catch (ignored) {
        return;
      }
      if (window.htmx) {
        htmx.trigger(document.body, "otklik:changed", change);
        if (ticketId && (change.ticket_id === ticketId || change.kind === "resync")) {
          htmx.trigger(document.body, "otklik:ticket-changed", change);
        }
      }
    });
    source.addEventListener("presence", function (message) {
      var change = {};
      try {
        change = JSON.parse(message.data);
      } catch (ignored) {
        return;
      }
      if (window.htmx && ticketId && change.ticket_id === ticketId) {
        htmx.trigger(document.body, "otklik:presence-changed", change);
      }
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  // Presence: the ticket page says every 15 s whether its agent is viewing or replying, and
  // says goodbye when it goes away; the answer (and pushed changes) show who else is here.
  var presenceTicket = document.body.dataset.ticketId;
  if (presenceTicket && document.getElementById("presence") && window.htmx) {
    var presenceUrl = "/tickets/" + presenceTicket + "/presence";
    var activity = "viewing";
    var beat = function () {
      if (document.getElementById("presence")) {
        htmx.ajax("POST", presenceUrl, {
          target: "#presence",
          swap: "outerHTML",
          values: { activity: activity },
        });
      }
    };
    var replyBody = document.getElementById("reply-body");
    if (replyBody) {
      var follow = function () {
        var now = replyBody.value.trim() !== "" ? "replying" : "viewing";
        if (now !== activity) {
          activity = now;
          beat();
        }
      };
      replyBody.addEventListener("input", follow);
      replyBody.addEventListener("blur", follow);
    }
    beat();
    window.setInterval(beat, 15000);
    window.addEventListener("pagehide", function () {
      try {
        fetch(presenceUrl, {
          method: "POST",
          keepalive: true,
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-CSRF-Token": csrf,
          },
          body: "activity=left",
        });
      } catch (ignored) {
        // The heartbeat's expiry covers a page that could not say goodbye.
      }
    });
  }

  // Ticking rows for bulk actions: x ticks the selected row, shift-click ticks a range, the
  // header box ticks the page; ticks survive the live refresh of the list.
  var ticked = {};
  var lastTicked = null;

  function rowChecks() {
    return Array.prototype.slice.call(document.querySelectorAll("input.row-check"));
  }

  function showTicked() {
    var count = rowChecks().filter(function (box) {
      return box.checked;
    }).length;
    var counter = document.getElementById("bulk-count");
    var form = document.getElementById("bulk-form");
    if (counter) {
      counter.textContent = count > 0 ? counter.dataset.label + " " + count : "";
    }
    if (form) {
      form.classList.toggle("has-selection", count > 0);
    }
  }

  function tick(box, checked) {
    box.checked = checked;
    if (checked) {
      ticked[box.value] = true;
    } else {
      delete ticked[box.value];
    }
  }

  document.addEventListener("click", function (event) {
    var box = event.target;
    if (!box || !box.classList) {
      return;
    }
    if (box.id === "select-all") {
      rowChecks().forEach(function (other) {
        tick(other, box.checked);
      });
      showTicked();
      return;
    }
    if (!box.classList.contains("row-check")) {
      return;
    }
    var boxes = rowChecks();
    if (event.shiftKey && lastTicked && lastTicked !== box && boxes.indexOf(lastTicked) !== -1) {
      var from = boxes.indexOf(lastTicked);
      var to = boxes.indexOf(box);
      for (var i = Math.min(from, to); i <= Math.max(from, to); i++) {
        tick(boxes[i], box.checked);
      }
    } else {
      tick(box, box.checked);
    }
    lastTicked = box;
    showTicked();
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    rowChecks().forEach(function (box) {
      box.checked = !!ticked[box.value];
    });
    showTicked();
  });

  function tickSelected() {
    var row = document.querySelector("[data-list] [data-row].is-selected");
    var box = row ? row.querySelector("input.row-check") : null;
    if (!box) {
      return false;
    }
    tick(box, !box.checked);
    lastTicked = box;
    showTicked();
    return true;
  }

  // Keyboard: j/k move in a list, Enter opens, x ticks, r reply, n note, a assign to me,
  // s solve, / search, ? the list of shortcuts.
  var selectedHref = null;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-list] [data-row]"));
  }

  function select(row) {
    rows().forEach(function (other) {
      other.classList.remove("is-selected");
    });
    if (!row) {
      return;
    }
    row.classList.add("is-selected");
    var link = row.querySelector("a.row-link");
    if (link) {
      selectedHref = link.getAttribute("href");
      link.focus();
    }
  }

  function restoreSelection() {
    if (!selectedHref) {
      return;
    }
    var match = rows().filter(function (row) {
      var link = row.querySelector("a.row-link");
      return link && link.getAttribute("href") === selectedHref;
    })[0];
    if (match) {
      match.classList.add("is-selected");
    }
  }

  function move(step) {
    var all = rows();
    if (all.length === 0) {
      return;
    }
    var current = all.findIndex(function (row) {
      return row.classList.contains("is-selected");
    });
    var next = current === -1 ? (step > 0 ? 0 : all.length - 1) : current + step;
    next = Math.max(0, Math.min(all.length - 1, next));
    select(all[next]);
  }

  function focusReply(kind) {
    var radio = document.getElementById(kind === "note" ? "kind-note" : "kind-reply");
    var body = document.getElementById("reply-body");
    if (radio && body) {
      radio.checked = true;
      body.focus();
      return true;
    }
    return false;
  }

  function submit(formId) {
    var form = document.getElementById(formId);
    if (form) {
      form.requestSubmit();
      return true;
    }
    return false;
  }

  function isTyping(target) {
    if (!target || !target.tagName) {
      return false;
    }
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  var dialog = document.getElementById("shortcuts");
  document.querySelectorAll('[data-action="shortcuts"]').forEach(function (button) {
    button.addEventListener("click", function () {
      if (dialog && !dialog.open) {
        dialog.showModal();
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) {
      return;
    }
    if (isTyping(event.target)) {
      if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (dialog && dialog.open) {
      return;
    }
    var handled = true;
    switch (event.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "x":
        handled = tickSelected();
        break;
      case "r":
        handled = focusReply("reply");
        break;
      case "n":
        handled = focusReply("note");
        break;
      case "a":
        handled = submit("assign-to-me-form");
        break;
      case "s":
        handled = submit("solve-form");
        break;
      case "/":
        var search = document.getElementById("search-q");
        if (search) {
          search.focus();
          search.select();
        } else {
          handled = false;
        }
        break;
      case "?":
        if (dialog) {
          dialog.showModal();
        } else {
          handled = false;
        }
        break;
      default:
        handled = false;
    }
    if (handled) {
      event.preventDefault();
    }
  });
})();
