// Live updates without a reload: the element with data-live is refetched every 2 seconds as an
// HTML fragment rendered (and escaped) by the server, and replaced when it changed. Pages work
// without this script; they are then current as of their last load.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute("data-live");
  var last = live.innerHTML;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) { live.innerHTML = html; last = html; }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 2000);
})();
