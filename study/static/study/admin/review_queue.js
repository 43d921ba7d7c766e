// The card review queue: a button with data-confirm (Delete) asks before its form is sent, and one with
// data-unsaved (Approve, Flag) asks when the card's fields hold an edit it would not save; any form sent, or link
// followed, asks when another card holds an edit that would be lost.
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

function editedCards(except) {
  // The ids of the cards other than `except`'s whose fields hold an edit: any form sent reloads the page.
  return Array.from(document.querySelectorAll("form"))
    .filter((form) => form !== except && unsavedEdit(form))
    .map((form) => form.elements.namedItem("card_id")?.value)
    .filter(Boolean);
}

let leaving = false;  // a form was sent after its questions were answered: the page asks nothing more

document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  const questions = [];
  if (button?.dataset.confirm) {
    questions.push(button.dataset.confirm);
  } else if (button?.dataset.unsaved && unsavedEdit(form)) {
    questions.push(button.dataset.unsaved);
  }
  // "Approve all cards of this question", another card's button, the filters: an edit typed into another card
  // was lost without a word (and approve-all approved that card as stored).
  const others = editedCards(form);
  if (others.length) {
    const cards = others.map((id) => `#${id}`).join(", ");
    questions.push(`Your edit of card ${cards} is not saved and will be lost. Go on without it?`);
  }
  for (const question of questions) {
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
  }
  leaving = true;
});

// A link (a page, a tab, the card's own page) leaves edits behind too: the browser asks first.
window.addEventListener("beforeunload", (event) => {
  if (!leaving && editedCards(null).length) {
    event.preventDefault();
    event.returnValue = "";
  }
});
