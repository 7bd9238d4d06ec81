// The console's own few lines: a toast leaves after a while, and a banner says when the
// daemon stops answering the page's live updates (and goes once they are back).
document.addEventListener("DOMContentLoaded", function () {
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
