// The card review queue: a button with data-confirm (Delete) asks before its form is sent, and one with
// data-unsaved (Approve, Flag) asks when the card's fields hold an edit it would not save.
// A file of its own, not an onclick attribute: the Content-Security-Policy allows no inline script.
"use strict";

function unsavedEdit(form) {
  // Each card's form holds what the page shows as stored in `<field>_was`; browsers send line breaks as CRLF.
  const same = (a, b) => a.replace(/\r\n/g, "\n").trim() === b.replace(/\r\n/g, "\n").trim();
  return ["cue", "fact", "cloze_text"].some((name) => {
    const field = form.elements.namedItem(name);
    const shown = form.elements.namedItem(`${name}_was`);
    return field && shown && field.tagName === "TEXTAREA" && !same(field.value, shown.value);
  });
}

document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (!button) {
    return;
  }
  const question = button.dataset.confirm || (button.dataset.unsaved && unsavedEdit(event.target) ? button.dataset.unsaved : "");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
