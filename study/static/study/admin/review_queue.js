// The card review queue: a button with data-confirm (Delete) asks before its form is sent.
// A file of its own, not an onclick attribute: the Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
