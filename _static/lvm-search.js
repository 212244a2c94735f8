// Search results show their snippets with the maths typeset, never as raw TeX ("\(\mathbf{x}\)").
//
// Sphinx builds a snippet from the text of the page it found: inline maths there is still TeX, which MathJax
// typesets only on the page itself. Here the snippet keeps every formula whole (a window of text never cuts
// one in half), puts it back in a maths element that the term highlighter leaves alone, and typesets it.
(() => {
  if (typeof Search === "undefined") return;
  const WIDTH = 240; // characters of text around the first search term, as Sphinx shows
  let typesetting = null; // the last typeset queued

  // The page's text as a list of pieces: {text} or {maths} (TeX with its \( \) or \[ \] delimiters).
  const pieces = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".headerlink, .eqno, script, style").forEach((element) => element.remove());
    // The article, not the whole main column: its header holds the download menu's ".pdf" and "Contents".
    const main = page.querySelector('[role="main"]');
    const root = (anchor && main?.querySelector(anchor)) || main?.querySelector("article") || main;
    if (!root) return [];
    const found = [];
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) {
        found.push({ text: node.nodeValue });
      } else if (node.nodeType === Node.ELEMENT_NODE && node.matches(".math")) {
        // A display equation becomes an inline one: a snippet is one line of text.
        const tex = node.textContent.trim().replace(/^\\\[/, "\\(\\displaystyle ").replace(/\\\]$/, "\\)");
        found.push({ maths: tex });
      } else {
        node.childNodes.forEach(walk);
      }
    };
    walk(root);
    return found;
  };

  Search.makeSearchSummary = (htmlString, keywords, anchor) => {
    const parts = pieces(htmlString, anchor);
    if (!parts.length) return null;
    let position = 0;
    for (const part of parts) {
      part.start = position;
      position += (part.text ?? part.maths).length;
    }
    const whole = parts.map((part) => part.text ?? part.maths).join("").toLowerCase();
    const hits = [...keywords].map((k) => whole.indexOf(k.toLowerCase())).filter((i) => i > -1);
    const from = Math.max((hits.length ? hits[hits.length - 1] : 0) - WIDTH / 2, 0);
    const to = from + WIDTH;

    const summary = document.createElement("p");
    summary.classList.add("context");
    if (from > 0) summary.append("...");
    for (const part of parts) {
      const end = part.start + (part.text ?? part.maths).length;
      if (end <= from || part.start >= to) continue;
      if (part.text !== undefined) {
        summary.append(part.text.slice(Math.max(from - part.start, 0), to - part.start).replace(/\s+/g, " "));
      } else {
        // Whole or not at all: a formula cut in half is TeX again.
        const maths = document.createElement("span");
        maths.className = "math notranslate nohighlight";
        maths.textContent = part.maths;
        summary.append(maths);
      }
    }
    if (to < position) summary.append("...");
    summary.normalize();
    // Typeset once the snippet is in the page (the caller appends it) and MathJax has started, one snippet
    // after another: MathJax loads a TeX extension (such as \boldsymbol) during a typeset, and a second
    // typeset started meanwhile leaves that extension's commands as red TeX.
    setTimeout(() => {
      if (!(window.MathJax && MathJax.startup)) return;
      typesetting = (typesetting || MathJax.startup.promise).then(() => MathJax.typesetPromise([summary]));
    }, 0);
    return summary;
  };
})();
