// article-qa chat: the page side of qa/webchat.py.
// - Questions: Enter (or Ask) puts the question in a queue and clears the box; the queue is asked one question at a
//   time (the hidden #qa-start button runs the question's events), so a question typed while another is pending is
//   asked next, never dropped. "New conversation" hands the pending and waiting questions back to the box; a
//   refused question goes back to the box too.
// - Citations: a marker of the reply whose passages the panel shows scrolls the panel to its paragraph and flashes
//   it; a marker of another reply asks the server for that reply's article and passages first (hidden #qa-act).
//   On a phone, where the page scrolls down to the panel, a button leads back to the reply.
// - Copy, 👍 / 👎 and the exports.
(function () {
  var queue = [];          // questions typed and not asked yet
  var busy = false;        // a question is being answered
  var inflight = null;     // its text
  var busySince = 0;
  var pendingAction = "";  // the action #qa-act sends next
  var pendingCite = null;  // {id, reply}: where to go once the panel shows the reply's passages
  var lastReply = null;
  var conversation = newId();  // sent with each question: an answer to a conversation restarted since is ignored

  function newId() { return Math.random().toString(36).slice(2, 12) + Date.now().toString(36); }
  window.qaConversation = function (restart) {
    if (restart) conversation = newId();
    return conversation;
  };

  function box() { return document.querySelector("#question textarea"); }
  function setBox(el, value) {
    el.value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;" }[c];
    });
  }
  function folded(text) { return String(text).trim().split(/\s+/).join(" "); }
  function setNotice(message) {
    var host = document.getElementById("qa-notice");
    if (!host) return;
    var p = document.createElement("p");
    p.className = "qa-notice qa-problem";
    p.setAttribute("role", "status");
    p.textContent = message;
    var inner = host.querySelector(".prose") || host;
    inner.innerHTML = "";
    inner.appendChild(p);
  }

  // --- the queue of questions ------------------------------------------------------------------------------------
  function renderQueue() {
    var host = document.getElementById("qa-queue");
    if (!host) return;
    host.innerHTML = "";
    if (!queue.length) return;
    var head = document.createElement("p");
    head.className = "qa-queue-head";
    head.textContent = !loaded ? "Asked once the page has loaded:" : queue.length === 1 ? "Asked next, once the answer is in:"
      : queue.length + " questions wait their turn:";
    host.appendChild(head);
    var list = document.createElement("ol");
    queue.forEach(function (q, i) {
      var li = document.createElement("li");
      var text = document.createElement("span");
      text.textContent = folded(q).slice(0, 200);
      var drop = document.createElement("button");
      drop.type = "button";
      drop.className = "qa-unqueue";
      drop.textContent = "Edit";
      drop.title = "Take this question back into the box";
      drop.addEventListener("click", function () {
        var taken = queue.splice(i, 1)[0];
        var b = box();
        if (b) { setBox(b, b.value.trim() ? b.value + "\n" + taken : taken); b.focus(); }
        renderQueue();
      });
      li.appendChild(text);
      li.appendChild(drop);
      list.appendChild(li);
    });
    host.appendChild(list);
  }
  // questions asked before the page has loaded (the conversation kept in the browser comes back then) wait for it
  var loaded = false;
  setTimeout(function () { if (!loaded) { loaded = true; startNext(); } }, 10000);
  function startNext() {
    if (busy || !queue.length || !loaded) return;
    var start = document.getElementById("qa-start");
    if (!start) return;
    busy = true;
    busySince = Date.now();
    start.click();
  }
  function enqueue(text) {
    queue.push(text);
    renderQueue();
    startNext();
  }
  function submitBox() {
    var b = box();
    if (!b) return;
    var text = b.value;
    if (!text.trim() && (busy || queue.length)) return;  // an empty Enter while others wait: nothing to keep
    setBox(b, "");
    enqueue(text);
  }
  // before Gradio sees them: Enter in the question box, and its Ask button
  function isSubmitKey(event) {
    return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.target.closest &&
      event.target.closest("#question textarea");
  }
  document.addEventListener("keydown", function (event) {
    if (!isSubmitKey(event)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    submitBox();
  }, true);
  document.addEventListener("keypress", function (event) {
    if (!isSubmitKey(event)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
  document.addEventListener("click", function (event) {
    var ask = event.target.closest && event.target.closest("#question button");
    if (!ask) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    submitBox();
  }, true);

  function message(role, html) { return { role: role, content: [{ type: "text", text: html }], metadata: null, options: null }; }
  window.qaStart = function (chat) {
    var text = queue.length ? queue.shift() : "";
    inflight = text;
    renderQueue();
    var shown = folded(text);
    var messages = (chat || []).slice();
    if (shown) {
      var cut = shown.length > 300 ? esc(shown.slice(0, 300)) + "… (" + shown.length.toLocaleString("en-US") + " characters)" : esc(shown);
      messages.push(message("user", '<p class="qa-question">' + cut + "</p>"));
    }
    messages.push(message("assistant", '<div class="qa-reply"><p class="qa-pending" role="status">Looking in the article…</p></div>'));
    return [messages, JSON.stringify({ q: text, c: conversation })];
  };
  window.qaAfterAnswer = function () {
    var bots = document.querySelectorAll('#chat [data-testid="bot"]');
    var last = bots.length ? bots[bots.length - 1] : null;
    var b = box();
    if (last && last.querySelector(".qa-keep") && inflight && b && !b.value.trim()) {
      setBox(b, inflight);  // a refused question stays in the box, to mend and send again
    }
    busy = false;
    inflight = null;
    scrollToAnswer();
    if (queue.length) setTimeout(startNext, 30);
  };
  window.qaTakeBack = function () {
    var back = (busy && inflight ? [inflight] : []).concat(queue).filter(function (q) { return q && q.trim(); });
    queue = [];
    busy = false;
    inflight = null;
    renderQueue();
    return back.join("\n");
  };
  setInterval(function () {  // an answer that never came (the connection dropped): hand the question back
    if (busy && Date.now() - busySince > 60000) {
      var b = box();
      if (inflight && b && !b.value.trim()) setBox(b, inflight);
      setNotice("No answer came back for your question; it is back in the box. Send it again.");
      busy = false;
      inflight = null;
      startNext();
    }
  }, 2000);

  window.qaExample = function (sample, current) {
    var text = Array.isArray(sample) ? sample[0] : sample;
    if (typeof text !== "string") return [current];
    var gap = text.indexOf("…");
    if (gap < 0) { enqueue(text); return [current]; }  // a question asked before: ask it
    var starter = text.slice(0, gap).replace(/\s+$/, " ") + text.slice(gap + 1).replace(/^\s+/, gap ? "" : "");
    var at = text.slice(0, gap).replace(/\s+$/, " ").length;
    setTimeout(function () { var b = box(); if (b) { b.focus(); b.setSelectionRange(at, at); } }, 60);
    return [starter];  // a phrase to complete: the cursor waits where the gap was
  };

  // --- citations and the article panel ---------------------------------------------------------------------------
  function flash(el) {
    el.classList.remove("qa-flash");
    void el.offsetWidth;  // restart the animation
    el.classList.add("qa-flash");
  }
  function scrollPanelTo(el) {
    // inside the article panel when it scrolls by itself (a wide screen); the page otherwise (a phone)
    var panel = document.getElementById("article-panel");
    if (panel && panel.contains(el) && panel.scrollHeight > panel.clientHeight + 1) {
      var top = el.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
      panel.scrollTo({ top: Math.max(0, top - panel.clientHeight / 3), behavior: "smooth" });
      var rect = panel.getBoundingClientRect();
      if (rect.top < 0 || rect.top > innerHeight - 80) panel.scrollIntoView({ block: "start", behavior: "smooth" });
    } else {
      el.scrollIntoView({ block: "center", behavior: "smooth" });
    }
  }
  function show(id) {
    var el = document.getElementById(id);
    var panel = document.getElementById("article-panel");
    if (!el || !panel || !panel.contains(el)) return false;
    scrollPanelTo(el);
    flash(el);
    return true;
  }
  function classValue(el, prefix) {
    var found = null;
    (el ? el.className.split(/\s+/) : []).forEach(function (c) { if (c.indexOf(prefix) === 0) found = c.slice(prefix.length); });
    return found;
  }
  function turnOf(reply) { return classValue(reply, "qa-turn-"); }
  function panelShows() { return classValue(document.querySelector("#article-panel .qa-article"), "qa-shows-"); }
  function sendAction(action) {
    pendingAction = JSON.stringify(action);
    var act = document.getElementById("qa-act");
    if (act) act.click();
  }
  window.qaTakeAction = function () { var a = pendingAction; pendingAction = ""; return a; };
  window.qaAfterAction = function (result) {
    var r = {};
    try { r = JSON.parse(result || "{}"); } catch (e) { r = {}; }
    if (r.kind === "cite" && pendingCite) {
      var target = pendingCite;
      pendingCite = null;
      setTimeout(function () {
        if (!show(target.id)) {  // a removed article: the panel says so, with the passage the reply quoted
          var panel = document.getElementById("article-panel");
          if (panel) { panel.scrollTop = 0; scrollPanelTo(panel.querySelector(".qa-panel-note") || panel); }
        }
        offerBack(target.reply);
      }, 60);
    } else if (r.kind === "down" && r.ok) {
      setTimeout(function () {
        var form = document.getElementById("feedback-form");
        if (!form) return;
        form.scrollIntoView({ block: "center", behavior: "smooth" });
        var first = form.querySelector("input[type=radio]");
        if (first) first.focus();
      }, 80);
    } else if (r.kind === "up" && r.ok && lastVote) {
      markVoted(lastVote);
    }
  };
  var lastVote = null;
  function markVoted(reply) {
    var actions = reply && reply.querySelector(".qa-actions");
    if (!actions) return;
    var label = actions.querySelector(".qa-voted");
    if (!label) {
      label = document.createElement("span");
      label.className = "qa-voted";
      label.setAttribute("role", "status");
      actions.appendChild(label);
    }
    label.textContent = "Feedback stored. Thank you.";
  }
  window.qaMarkVoted = function (turn, votes) {
    if (!turn || !votes || !votes[turn]) return;
    markVoted(document.querySelector("#chat .qa-turn-" + turn));
  };

  // on a phone the page scrolled down to the panel: a way back to the reply
  var back = null;
  function backButton() {
    if (back) return back;
    back = document.createElement("button");
    back.type = "button";
    back.id = "qa-back";
    back.className = "qa-back";
    back.hidden = true;
    back.textContent = "↑ Back to the reply";
    back.addEventListener("click", function () {
      back.hidden = true;
      if (lastReply) {
        lastReply.scrollIntoView({ block: "center", behavior: "smooth" });
        lastReply.setAttribute("tabindex", "-1");
        lastReply.focus({ preventScroll: true });
      }
    });
    document.body.appendChild(back);
    window.addEventListener("scroll", function () {
      if (back.hidden || !lastReply) return;
      var r = lastReply.getBoundingClientRect();
      if (r.bottom > 0 && r.top < innerHeight) back.hidden = true;
    }, { passive: true });
    return back;
  }
  function offerBack(reply) {
    if (!reply) return;
    lastReply = reply;
    setTimeout(function () {
      var r = reply.getBoundingClientRect();
      if (r.bottom < 0 || r.top > innerHeight) backButton().hidden = false;
    }, 800);
  }

  document.addEventListener("click", function (event) {
    var t = event.target;
    if (!t.closest) return;
    var cite = t.closest("a.qa-cite");
    if (cite) {
      event.preventDefault();
      var id = (cite.getAttribute("href") || "").replace(/^#/, "");
      var reply = cite.closest(".qa-reply");
      var turn = turnOf(reply);
      if (!turn || panelShows() === turn) {
        if (show(id)) offerBack(reply);
        return;
      }
      pendingCite = { id: id, reply: reply };
      sendAction({ kind: "cite", turn: turn, rank: parseInt(cite.textContent.replace(/\D/g, ""), 10) || null });
      return;
    }
    var vote = t.closest("button.qa-vote");
    if (vote) {
      var voted = vote.closest(".qa-reply");
      lastVote = voted;
      sendAction({ kind: vote.classList.contains("qa-up") ? "up" : "down", turn: turnOf(voted) });
      return;
    }
    var copy = t.closest("button.qa-copy");
    if (copy) {
      var plain = copy.closest(".qa-reply").querySelector(".qa-plain");
      if (plain && navigator.clipboard) {
        navigator.clipboard.writeText(plain.textContent).then(function () {
          copy.textContent = "Copied";
          setTimeout(function () { copy.textContent = "Copy"; }, 1500);
        });
      }
    }
  });

  function scrollToAnswer() {
    // after each answer the panel scrolls to the answer's paragraph: on a wide screen, where the panel scrolls by
    // itself beside the chat; on a phone the page stays on the answer (the citation link leads to the paragraph)
    setTimeout(function () {
      var panel = document.getElementById("article-panel");
      // the answer's paragraph; after a refusal the closest passage's ([1], not the first cited one in reading order)
      var el = document.querySelector("#article-panel .qa-answer-para") || document.querySelector("#article-panel .qa-top");
      if (el && panel && panel.scrollHeight > panel.clientHeight + 1) {
        var top = el.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
        panel.scrollTo({ top: Math.max(0, top - panel.clientHeight / 3), behavior: "smooth" });
        flash(el);
      }
    }, 60);
  }
  window.qaShowAnswer = scrollToAnswer;
  window.qaAfterLoad = function () {
    loaded = true;
    scrollToAnswer();
    layout();
    renderQueue();
    startNext();
  };
  window.qaAfterAdd = function () {
    var notice = document.querySelector("#qa-notice .qa-ok");
    var b = box();
    if (notice && b) { b.focus(); notice.scrollIntoView({ block: "center", behavior: "smooth" }); }
  };

  window.qaDownload = function (data) {
    var d = {};
    try { d = JSON.parse(data || "{}"); } catch (e) { d = {}; }
    if (d.error || typeof d.text !== "string") { setNotice(d.error || "The export failed; try again."); return; }
    var url = URL.createObjectURL(new Blob([d.text], { type: (d.type || "text/plain") + ";charset=utf-8" }));
    var a = document.createElement("a");
    a.href = url;
    a.download = d.name || "conversation.txt";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
  };

  // "on the right" or "below": where the panel is, said where the chat invites a question
  var where = document.createElement("style");
  document.head.appendChild(where);
  function layout() {
    var chat = document.getElementById("qa-chat-column");
    var panel = document.getElementById("qa-panel-column");
    if (!chat || !panel) return;
    var stacked = panel.getBoundingClientRect().top >= chat.getBoundingClientRect().bottom - 1;
    var css = stacked ? ".qa-where-wide { display: none !important; } .qa-where-narrow { display: inline !important; }"
      : ".qa-where-narrow { display: none !important; } .qa-where-wide { display: inline !important; }";
    if (where.textContent !== css) where.textContent = css;
  }
  window.addEventListener("resize", layout);
  if (window.ResizeObserver) new ResizeObserver(function () { layout(); }).observe(document.body);
  var labelled = setInterval(function () {
    // the article panel scrolls by itself: keyboard users reach it with Tab, and screen readers hear its name
    var panel = document.getElementById("article-panel");
    if (panel) {
      panel.tabIndex = 0;
      panel.setAttribute("role", "region");
      panel.setAttribute("aria-label", "Article in view");
      layout();
      clearInterval(labelled);
    }
  }, 200);
})();
