// The rule playground. Everything shown comes from /playground/api/*; text goes in with textContent, and
// the only HTML inserted is the card detail the server rendered from Markdown with raw HTML disabled.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const STATUS_TEXT = { fired: "fired", "not-fired": "not fired", unknown: "could not evaluate" };
  const FACTS_SHOWN = 6;
  let asOfFromData = true; // the as-of time follows the request's data until the user sets one

  function el(tag, options, children) {
    const node = document.createElement(tag);
    const opts = options || {};
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    for (const [name, value] of Object.entries(opts.attrs || {})) node.setAttribute(name, value);
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function externalLink(url, label) {
    // Every link leaves the playground in a new tab, telling the target nothing about where from.
    const attrs = { href: url, target: "_blank", rel: "noopener noreferrer" };
    return el("a", { text: label || url, attrs });
  }

  function readableTime(iso) {
    return iso.replace("T", " ").replace(/:00Z$/, " UTC");
  }

  // ---- building and loading requests ----

  function selectedHook() {
    const option = $("service").selectedOptions[0];
    return option ? option.dataset.hook : "";
  }

  function syncOrderSelect() {
    // patient-view has no draft orders to send.
    const noOrders = selectedHook() === "patient-view";
    $("order").disabled = noOrders;
    if (noOrders) $("order").value = "";
  }

  function showRequest(answer) {
    $("request").value = JSON.stringify(answer.request, null, 2);
    $("as-of").value = answer.asOf ? answer.asOf.slice(0, 16) : "";
    asOfFromData = true;
    matchServiceToHook(answer.request);
  }

  function matchServiceToHook(request) {
    // A pasted or saved request names its hook; choose the one service that answers it.
    if (!request || typeof request !== "object") return;
    const hook = request.hook || (request.body && request.body.hook);
    if (!hook || hook === selectedHook()) return;
    const options = Array.from($("service").options).filter((o) => o.dataset.hook === hook);
    if (options.length === 1) {
      $("service").value = options[0].value;
      syncOrderSelect();
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    return { response, body };
  }

  async function build(event) {
    event.preventDefault();
    const params = new URLSearchParams({ patient: $("patient").value, service: $("service").value });
    if ($("order").value && !$("order").disabled) params.set("order", $("order").value);
    const { response, body } = await getJson("/playground/api/request?" + params.toString());
    if (!response.ok) return showError(response.status, body);
    hideError();
    showRequest(body);
  }

  async function loadSaved(event) {
    event.preventDefault();
    const params = new URLSearchParams({ saved: $("saved").value });
    const { response, body } = await getJson("/playground/api/request?" + params.toString());
    if (!response.ok) return showError(response.status, body);
    hideError();
    showRequest(body);
  }

  function requestEdited() {
    if (asOfFromData) $("as-of").value = ""; // the server derives it again from the edited data
    try {
      matchServiceToHook(JSON.parse($("request").value));
    } catch (ignored) {
      // Not JSON (yet): the server says what is wrong when it is evaluated.
    }
  }

  // ---- evaluating ----

  async function evaluate(event) {
    event.preventDefault();
    const params = new URLSearchParams({ service: $("service").value });
    if ($("as-of").value) params.set("as_of", $("as-of").value);
    $("busy").hidden = false;
    $("evaluate").disabled = true;
    try {
      const response = await fetch("/playground/api/evaluate?" + params.toString(), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: $("request").value,
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        $("results").hidden = true;
        return showError(response.status, body);
      }
      hideError();
      showResults(body);
    } catch (error) {
      showError(0, null, "The playground could not reach the service: " + error.message);
    } finally {
      $("busy").hidden = true;
      $("evaluate").disabled = false;
    }
  }

  function showError(status, outcome, message) {
    const list = $("error-issues");
    list.replaceChildren();
    $("error-title").textContent = status
      ? `HTTP ${status}: the service would refuse this request`
      : "The request could not be evaluated";
    const issues = outcome && outcome.resourceType === "OperationOutcome" ? outcome.issue || [] : [];
    for (const issue of issues) {
      const where = issue.expression && issue.expression.length ? ` (at ${issue.expression.join(", ")})` : "";
      list.append(
        el("li", {}, [
          el("span", { className: "pg-issue-severity", text: `${issue.severity} · ${issue.code}` }),
          el("span", { className: "pg-issue-text", text: (issue.diagnostics || "") + where }),
        ]),
      );
    }
    if (!issues.length) list.append(el("li", { text: message || "no details were given" }));
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
  }

  function showResults(result) {
    const cards = result.cards || [];
    const notes = [
      `${result.service.id} (${result.service.hook}) as of ${readableTime(result.asOf)}`,
      `${cards.length} card${cards.length === 1 ? "" : "s"}`,
    ];
    if (result.removed.length) notes.push(`removed ${result.removed.join(" and ")}: prefetch only`);
    $("result-note").textContent = notes.join(" · ");
    if (!$("as-of").value) $("as-of").value = result.asOf.slice(0, 16);
    $("warnings").replaceChildren(...result.warnings.map((w) => el("li", { text: w })));
    $("cards").replaceChildren(...cards.map(renderCard));
    if (!cards.length) $("cards").append(el("p", { className: "muted", text: "No cards." }));
    $("after").hidden = true;
    renderExplanation(result.explanation);
    $("response-json").textContent = JSON.stringify(result.response, null, 2);
    $("results").hidden = false;
  }

  // ---- cards, as an EHR shows them ----

  // A merged card names the merge and every rule it speaks for; any other card its one rule.
  function ruleText(view) {
    const own = `${view.rule.id} ${view.rule.version}`;
    if (!view.mergedInto || !view.speaksFor.length) return own;
    const rules = view.speaksFor.map((rule) => `${rule.id} ${rule.version}`).join(", ");
    return `${view.mergedInto}: speaks for ${rules}`;
  }

  function renderCard(view) {
    const card = view.card;
    const article = el("article", {
      className: `pg-card pg-card--${card.indicator}`,
      attrs: {
        "data-indicator": card.indicator,
        "data-rule": view.rule ? view.rule.id : "",
        "data-merged": view.mergedInto || "",
      },
    });
    article.append(
      el("header", { className: "pg-card-head" }, [
        el("span", { className: "pg-indicator", text: card.indicator }),
        view.rule ? el("span", { className: "pg-rule", text: ruleText(view) }) : null,
      ]),
      el("h3", { className: "pg-summary", text: card.summary }),
    );
    if (view.detailHtml) {
      const detail = el("div", { className: "pg-detail" });
      detail.innerHTML = view.detailHtml; // rendered server-side, raw HTML disabled
      article.append(detail);
    }
    const source = el("p", { className: "pg-source", text: "Source: " });
    source.append(card.source.url ? externalLink(card.source.url, card.source.label) : card.source.label);
    article.append(source);

    const suggestions = card.suggestions || [];
    if (suggestions.length) {
      const box = el("div", { className: "pg-suggestions" });
      suggestions.forEach((suggestion, index) => {
        const button = el("button", {
          className: "pg-suggestion" + (suggestion.isRecommended ? " pg-recommended" : ""),
          attrs: { type: "button", "aria-pressed": "false" },
        });
        if (suggestion.isRecommended) button.append(el("span", { className: "pg-tag", text: "recommended" }));
        button.append(document.createTextNode(suggestion.label));
        button.addEventListener("click", () => {
          document.querySelectorAll(".pg-suggestion[aria-pressed=true]").forEach((b) => {
            b.setAttribute("aria-pressed", "false");
          });
          button.setAttribute("aria-pressed", "true");
          showAfter(suggestion, view.suggestions[index]);
        });
        box.append(button);
      });
      if (card.selectionBehavior) {
        box.append(el("span", { className: "muted pg-selection", text: `select ${card.selectionBehavior}` }));
      }
      article.append(box);
    }
    const links = card.links || [];
    if (links.length) {
      article.append(
        el(
          "ul",
          { className: "pg-links" },
          links.map((link) =>
            el("li", {}, [
              externalLink(link.url, link.label),
              link.type === "smart" ? el("span", { className: "muted", text: " (SMART app)" }) : null,
            ]),
          ),
        ),
      );
    }
    const reasons = card.overrideReasons || [];
    if (reasons.length) {
      article.append(
        el("div", { className: "pg-overrides" }, [
          el("span", { className: "muted", text: "Override reasons: " }),
          el(
            "ul",
            {},
            reasons.map((reason) => el("li", { text: reason.display, attrs: { title: reason.code } })),
          ),
        ]),
      );
    }
    return article;
  }

  // ---- what accepting a suggestion does ----

  function showAfter(suggestion, view) {
    $("after-label").textContent = suggestion.label;
    const holder = $("after-actions");
    holder.replaceChildren();
    for (const action of view.actions) {
      const section = el("section", { className: `pg-action pg-action--${action.type}` });
      section.append(
        el("h4", {}, [
          el("span", { className: "pg-action-type", text: action.type }),
          document.createTextNode(" " + action.targets.join(", ")),
        ]),
      );
      if (action.description) section.append(el("p", { className: "muted", text: action.description }));
      section.append(compareTable(action));
      if (action.resource) {
        section.append(
          el("details", {}, [
            el("summary", { text: "Full JSON" }),
            el("pre", { text: JSON.stringify(action.resource, null, 2) }),
          ]),
        );
      }
      holder.append(section);
    }
    if (!view.actions.length) {
      holder.append(el("p", { className: "muted", text: "This suggestion has no actions." }));
    }
    $("after").hidden = false;
  }

  function compareTable(action) {
    const columns = { update: ["before (draft)", "after"], create: ["created"] }[action.type] || ["deleted"];
    const head = el("tr", {}, [el("th", { text: "" }), ...columns.map((c) => el("th", { text: c }))]);
    const body = action.rows.map((row) => {
      const cells = [el("th", { text: row.label, attrs: { scope: "row" } })];
      if (action.type === "update") {
        cells.push(el("td", { className: "pg-before", text: row.before ?? "—" }));
        cells.push(el("td", { className: "pg-after-value", text: row.after ?? "—" }));
      } else {
        cells.push(el("td", { text: (action.type === "create" ? row.after : row.before) ?? "—" }));
      }
      const attrs = { "data-field": row.label };
      return el("tr", { className: row.changed ? "pg-changed" : "", attrs }, cells);
    });
    return el("table", { className: "pg-compare" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  // ---- the explanation ----

  function renderExplanation(explanation) {
    const ruleset = explanation.ruleset;
    const hash = ruleset.hash.slice(0, 12);
    $("ruleset").textContent = `ruleset ${ruleset.name} ${ruleset.version} (sha256 ${hash})`;
    const rows = explanation.rules.map((rule) => {
      const items = rule.facts.map((fact) =>
        el("li", { className: fact.value === null ? "pg-fact-missing" : "" }, [
          el("code", { text: fact.name }),
          document.createTextNode(" " + fact.text),
        ]),
      );
      // A rule reading many facts would push the rest of the table off screen: the rest fold away.
      const facts = el("ul", { className: "pg-facts" }, items.slice(0, FACTS_SHOWN));
      const more =
        items.length > FACTS_SHOWN
          ? el("details", { className: "pg-more" }, [
              el("summary", { text: `${items.length - FACTS_SHOWN} more facts` }),
              el("ul", { className: "pg-facts" }, items.slice(FACTS_SHOWN)),
            ])
          : null;
      const attrs = { "data-rule": rule.id, "data-status": rule.status };
      return el("tr", { className: `pg-status pg-status--${rule.status}`, attrs }, [
        el("td", {}, [
          el("strong", { text: rule.id }),
          el("span", { className: "muted", text: ` ${rule.version}` }),
          el("div", { className: "muted", text: rule.title }),
        ]),
        el("td", {}, [el("span", { className: "pg-badge", text: STATUS_TEXT[rule.status] || rule.status })]),
        el("td", { text: rule.reason }),
        el("td", {}, rule.facts.length ? [facts, more] : [el("span", { className: "muted", text: "none" })]),
      ]);
    });
    if (!rows.length) {
      rows.push(el("tr", {}, [el("td", { text: "no rules run for this service", attrs: { colspan: "4" } })]));
    }
    $("explanation").tBodies[0].replaceChildren(...rows);
    filterExplanation();
  }

  function filterExplanation() {
    const onlyRelevant = $("only-relevant").checked;
    for (const row of $("explanation").tBodies[0].rows) {
      row.hidden = onlyRelevant && row.dataset.status === "not-fired";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("service").addEventListener("change", syncOrderSelect);
    $("build-form").addEventListener("submit", build);
    if ($("saved-form")) $("saved-form").addEventListener("submit", loadSaved);
    $("request").addEventListener("input", requestEdited);
    $("as-of").addEventListener("input", () => {
      asOfFromData = false;
    });
    $("evaluate-form").addEventListener("submit", evaluate);
    $("only-relevant").addEventListener("change", filterExplanation);
    syncOrderSelect();
  });
})();
