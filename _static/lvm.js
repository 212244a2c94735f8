// The course's few behaviours on top of the book theme (see _static/lvm.css for the looks).
document.addEventListener("DOMContentLoaded", () => {
  // Every figure opens full size: wrap it in a link to its own image file (a new tab on a phone or desktop).
  document.querySelectorAll("article.bd-article img").forEach((image) => {
    if (image.closest("a[href], .btn__icon-container")) return;
    const link = document.createElement("a");
    link.href = image.getAttribute("src");
    link.className = "lvm-figure-link";
    link.target = "_blank";
    link.rel = "noopener";
    link.title = "Open the figure full size";
    image.replaceWith(link);
    link.append(image);
  });

  // A folded box opens wherever its title is clicked. sphinx-togglebutton listens on the title but acts only
  // when the click lands on the title element itself or its button: a click on the title's words (or its
  // maths) did nothing. Send such clicks on to the title.
  document.addEventListener("click", (event) => {
    const title = event.target.closest(".admonition.toggle > .admonition-title");
    if (!title || event.target === title || event.target.closest(".toggle-button")) return;
    event.stopPropagation();
    event.preventDefault();
    title.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  }, true);

  // A folded solution opens wherever its title is clicked. Its title is a link to the exercise it solves,
  // which would jump away instead: keep the words, drop the link (the exercise sits just above).
  document.querySelectorAll("div.solution > .admonition-title a.reference").forEach((anchor) => {
    const words = document.createElement("span");
    words.append(...anchor.childNodes);
    anchor.replaceWith(words);
  });
});
