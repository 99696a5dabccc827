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

  // A form refused with 422 comes back as typed with its fields marked: show it.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Whether the keyboard is inside the element `id` (a live refresh would throw away what
  // the agent is choosing there).
  function focusedWithin(id) {
    var element = document.getElementById(id);
    return !!(element && document.activeElement && element.contains(document.activeElement));
  }

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
        var kind = change.kind || "";
        var resync = kind === "resync";
        htmx.trigger(document.body, "otklik:changed", change);
        if (ticketId && (change.ticket_id === ticketId || resync)) {
          htmx.trigger(document.body, "otklik:ticket-changed", change);
        }
        // The chats page: the queue and the agent's chats.
        if (resync || kind.indexOf("chat.") === 0 || kind.indexOf("ticket.") === 0) {
          htmx.trigger(document.body, "otklik:chats-changed", change);
        }
        // The header's "2/3 chats" and state (a chat was routed to the agent, or ended).
        if ((resync || kind === "chat.availability") && !focusedWithin("availability")) {
          htmx.trigger(document.body, "otklik:availability-changed", change);
        }
        // The chat bar: its own chat changed, or (while it waits) the queue moved.
        var bar = document.getElementById("chat-bar");
        var queued = bar && bar.dataset.chatState === "queued" && kind === "chat.updated";
        if (bar && (change.ticket_id === ticketId || resync || queued) && !focusedWithin("chat-bar")) {
          htmx.trigger(document.body, "otklik:chat-changed", change);
        }
      }
    });
    source.addEventListener("typing", function (message) {
      var typing = {};
      try {
        typing = JSON.parse(message.data);
      } catch (ignored) {
        return;
      }
      if (ticketId && typing.ticket_id === ticketId) {
        showTyping(typing);
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

  // "The customer is typing…": who types on this ticket's chat, each forgotten after a few
  // seconds without news (a page that went away never says "stopped").
  var typers = {};
  function drawTyping() {
    var line = document.getElementById("chat-typing");
    if (!line) {
      return;
    }
    var now = Date.now();
    var texts = [];
    Object.keys(typers).forEach(function (key) {
      if (typers[key].until < now) {
        delete typers[key];
      } else {
        texts.push(typers[key].text);
      }
    });
    line.textContent = texts.join(" ");
    line.hidden = texts.length === 0;
  }
  function showTyping(typing) {
    var line = document.getElementById("chat-typing");
    if (!line) {
      return;
    }
    var key = typing.by === "agent" ? "agent:" + typing.name : "visitor";
    if (typing.typing) {
      var text = typing.by === "agent"
        ? (line.dataset.agentText || "").replace("{name}", typing.name || "")
        : line.dataset.visitorText || "";
      typers[key] = { text: text, until: Date.now() + 8000 };
      window.setTimeout(drawTyping, 8100);
    } else {
      delete typers[key];
    }
    drawTyping();
  }

  function post(url, body, keepalive) {
    try {
      return fetch(url, {
        method: "POST",
        credentials: "same-origin",
        keepalive: !!keepalive,
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          "X-CSRF-Token": csrf,
        },
        body: body,
      }).catch(function () {
        // Typing and read marks are best effort: the next one corrects a lost one.
      });
    } catch (ignored) {
      return null;
    }
  }

  // While the agent writes a public reply on a live chat, the visitor sees "typing…": at most
  // one post every 2 s, and "stopped" after 5 s without a key, on leaving the box, on sending,
  // and on switching to an internal note.
  var chatTicket = document.body.dataset.ticketId;
  var chatReply = document.getElementById("reply-body");
  if (chatTicket && chatReply && document.getElementById("chat-bar")) {
    var typingUrl = "/tickets/" + chatTicket + "/chat/typing";
    var typingOn = false;
    var typingSentAt = 0;
    var typingIdle = null;
    var stopTyping = function () {
      window.clearTimeout(typingIdle);
      if (typingOn) {
        typingOn = false;
        typingSentAt = 0;
        post(typingUrl, "typing=0", true);
      }
    };
    var isPublic = function () {
      var radio = document.getElementById("kind-reply");
      return !radio || radio.checked;
    };
    var chatIsLive = function () {
      var bar = document.getElementById("chat-bar");
      return !!(bar && bar.dataset.chatLive === "1");
    };
    chatReply.addEventListener("input", function () {
      if (!isPublic() || !chatIsLive() || chatReply.value.trim() === "") {
        stopTyping();
        return;
      }
      var now = Date.now();
      if (!typingOn || now - typingSentAt >= 2000) {
        typingOn = true;
        typingSentAt = now;
        post(typingUrl, "typing=1");
      }
      window.clearTimeout(typingIdle);
      typingIdle = window.setTimeout(stopTyping, 5000);
    });
    chatReply.addEventListener("blur", stopTyping);
    var replyForm = document.getElementById("reply-form");
    if (replyForm) {
      replyForm.addEventListener("submit", stopTyping);
      replyForm.addEventListener("change", function (event) {
        if (event.target && event.target.name === "kind" && !isPublic()) {
          stopTyping();
        }
      });
    }
    window.addEventListener("pagehide", stopTyping);
  }

  // The page shows the chat: mark it read up to its last entry, on load, when new entries
  // arrive (the bar is redrawn) and when the tab comes back into view.
  var readUpTo = 0;
  function markChatRead() {
    var bar = document.getElementById("chat-bar");
    if (!bar || !chatTicket || document.visibilityState === "hidden") {
      return;
    }
    var last = parseInt(bar.dataset.lastSeq, 10) || 0;
    var read = parseInt(bar.dataset.readSeq, 10) || 0;
    if (last > read && last > readUpTo) {
      readUpTo = last;
      post("/tickets/" + chatTicket + "/chat/read", "seq=" + last);
    }
  }
  markChatRead();
  document.body.addEventListener("htmx:afterSwap", markChatRead);
  document.addEventListener("visibilitychange", markChatRead);

  // Waiting times tick every second, counted from what the server drew (so the browser's
  // clock does not matter).
  function parseWaited(text) {
    return text.split(":").reduce(function (total, part) {
      return total * 60 + (parseInt(part, 10) || 0);
    }, 0);
  }
  function formatWaited(seconds) {
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor(seconds / 60) % 60;
    var rest = seconds % 60;
    var pad = function (n) {
      return (n < 10 ? "0" : "") + n;
    };
    return (hours > 0 ? hours + ":" + pad(minutes) : String(minutes)) + ":" + pad(rest);
  }
  function tickWaits() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (element) {
      if (!element.dataset.t0) {
        element.dataset.t0 = String(now);
        element.dataset.base = String(parseWaited(element.textContent.trim()));
      }
      var elapsed = Math.floor((now - Number(element.dataset.t0)) / 1000);
      element.textContent = formatWaited(Number(element.dataset.base) + Math.max(0, elapsed));
    });
  }
  if (
    document.querySelector("[data-since]") ||
    document.getElementById("chat-lists") ||
    document.getElementById("chat-bar")
  ) {
    window.setInterval(tickWaits, 1000);
  }

  // Changing the maximum of chats saves it at once (the state stays as it is).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.id === "availability-max" && target.form) {
      target.form.requestSubmit();
    }
  });

  // Forms that do something hard to undo ask first (rotating a secret).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Copy buttons (the embed snippet, the identity secret).
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.querySelector(button.dataset.copy);
    if (!source) {
      return;
    }
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = button.dataset.copied || label;
      window.setTimeout(function () {
        button.textContent = label;
      }, 2000);
    }, function () {
      // Without clipboard access the text stays selectable (user-select: all).
    });
  });

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
