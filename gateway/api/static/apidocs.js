// Offline API reference: renders /openapi.json without any external script.
"use strict";

// el() as in app.js: each page loads a single script of its own, with no bundler
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function schemaText(schema, spec) {
  return JSON.stringify(schema, (key, value) => {
    if (value && typeof value === "object" && value.$ref) {
      const name = value.$ref.split("/").pop();
      return { [name]: "(see schemas below)" };
    }
    return value;
  }, 2);
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  const ops = document.getElementById("ops");
  const nodes = [el("p", {}, `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`)];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = el("div", { class: "op" });
      const head = el("div");
      head.appendChild(el("span", { class: "method" }, method.toUpperCase()));
      head.appendChild(el("code", {}, path));
      if (op.security || (op.responses && op.responses["401"])) head.appendChild(el("span", { class: "muted" }, "  (bearer token)"));
      box.appendChild(head);
      if (op.description || op.summary) box.appendChild(el("p", {}, op.description || op.summary));
      for (const p of op.parameters || []) {
        box.appendChild(el("div", {}, `${p.in} ${p.name}${p.required ? " (required)" : ""}: ${schemaText(p.schema)} ${p.description || ""}`));
      }
      const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description || ""}`);
      box.appendChild(el("div", { class: "muted" }, "responses: " + codes.join("; ")));
      ops.appendChild(box);
      nodes.push(box);
    }
  }
  nodes.push(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries((spec.components || {}).schemas || {})) {
    nodes.push(el("h3", {}, name));
    nodes.push(el("pre", {}, schemaText(schema)));
  }
  ops.replaceChildren(...nodes);
}

main().catch(err => { document.getElementById("ops").textContent = "cannot load /openapi.json: " + err.message; });
