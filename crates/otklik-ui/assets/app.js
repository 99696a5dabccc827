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
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  // Keyboard: j/k move in a list, Enter opens, r reply, n note, a assign to me, s solve,
  // / search, ? the list of shortcuts.
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
