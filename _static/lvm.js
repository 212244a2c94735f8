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

  // An equation wider than its column scrolls, but phones (and macOS) hide scrollbars until touched: fade the
  // edge where more of it lies, so that a reader sees it goes on. MathJax typesets after this runs and folded
  // solutions have no width until opened, so each box is watched for size changes as well as scrolls.
  const markOverflow = (box) => {
    const hidden = box.scrollWidth - box.clientWidth;
    box.classList.toggle("lvm-more-right", hidden > 1 && box.scrollLeft < hidden - 1);
    box.classList.toggle("lvm-more-left", hidden > 1 && box.scrollLeft > 1);
  };
  const watched = new WeakSet();
  const resized = new ResizeObserver((entries) => entries.forEach((entry) => markOverflow(entry.target)));
  const watchEquations = () => {
    document.querySelectorAll('div.math, div.math mjx-container[display="true"]').forEach((box) => {
      if (watched.has(box)) return;
      watched.add(box);
      box.addEventListener("scroll", () => markOverflow(box), { passive: true });
      resized.observe(box);
      markOverflow(box);
    });
  };
  watchEquations();
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(watchEquations);
  new MutationObserver(() => watchEquations()).observe(document.querySelector("article") || document.body,
                                                       { childList: true, subtree: true });
});
