// The console's own few lines: the search box filled from the address, a toast that
// leaves after a while, and a banner when the daemon stops answering the page's live
// updates (gone once they are back).
document.addEventListener("DOMContentLoaded", function () {
  // A search box shows what was searched for, from the address (the page never holds it).
  var params = new URLSearchParams(window.location.search);
  document.querySelectorAll("input[data-from-address]").forEach(function (input) {
    input.value = params.get(input.getAttribute("data-from-address")) || "";
  });
  var toast = document.getElementById("toast");
  if (toast) {
    setTimeout(function () { toast.classList.add("gone"); }, 8000);
  }
  var offline = document.getElementById("offline");
  if (!offline) return;
  var down = function () { offline.hidden = false; };
  var up = function () { offline.hidden = true; };
  document.body.addEventListener("htmx:sendError", down);
  document.body.addEventListener("htmx:sseError", down);
  document.body.addEventListener("htmx:sseOpen", up);
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail && e.detail.successful) up();
  });
});
