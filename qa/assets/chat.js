// article-qa chat: citation links scroll the article panel to the cited paragraph and flash it; the Copy button
// of a reply copies its plain text (the hidden .qa-plain beside it), not its markup.
(function () {
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
    } else {
      el.scrollIntoView({ block: "center", behavior: "smooth" });
    }
  }
  function show(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    scrollPanelTo(el);
    flash(el);
    return true;
  }
  document.addEventListener("click", function (event) {
    var cite = event.target.closest && event.target.closest("a.qa-cite");
    if (cite) {
      event.preventDefault();
      var id = (cite.getAttribute("href") || "").replace(/^#/, "");
      if (!show(id)) {
        var note = document.getElementById("qa-panel-note");
        if (note) note.textContent = "That passage is in an article not shown in the panel; ask again to show it.";
      }
      return;
    }
    var copy = event.target.closest && event.target.closest("button.qa-copy");
    if (copy) {
      var plain = copy.parentElement.querySelector(".qa-plain");
      if (plain && navigator.clipboard) {
        navigator.clipboard.writeText(plain.textContent).then(function () {
          copy.textContent = "Copied";
          setTimeout(function () { copy.textContent = "Copy"; }, 1500);
        });
      }
    }
  });
  // the article panel scrolls by itself: keyboard users reach it with Tab, and screen readers hear its name
  var labelled = setInterval(function () {
    var panel = document.getElementById("article-panel");
    if (panel) {
      panel.tabIndex = 0;
      panel.setAttribute("role", "region");
      panel.setAttribute("aria-label", "Article in view");
      clearInterval(labelled);
    }
  }, 200);
  window.qaShowAnswer = function () {
    // after each answer the panel scrolls to the answer's paragraph: on a wide screen, where the panel scrolls by
    // itself beside the chat; on a phone the page stays on the answer (the citation link leads to the paragraph)
    setTimeout(function () {
      var panel = document.getElementById("article-panel");
      // the answer's paragraph; after a refusal the closest passage's ([1], not the first cited one in reading order)
      var el = document.querySelector("#article-panel .qa-answer-para") || document.querySelector("#article-panel .qa-top");
      if (el && panel && panel.scrollHeight > panel.clientHeight + 1) { scrollPanelTo(el); flash(el); }
    }, 60);
  };
})();
