// The invite wizard: one step shown at a time, a summary before "Create N users".
// The server checks everything again; this only guides.
(function () {
  const form = document.getElementById("invite-wizard");
  if (!form) return;
  const steps = [...form.querySelectorAll("fieldset[data-step]")];
  const labels = [...form.querySelectorAll("[data-step-label]")];
  const back = document.getElementById("wizard-back");
  const next = document.getElementById("wizard-next");
  const submit = document.getElementById("wizard-submit");
  const problem = document.getElementById("wizard-problem");
  const rows = document.getElementById("people-rows");
  let current = 0;

  const people = () =>
    [...rows.querySelectorAll(".invite-person")]
      .map((row) => ({
        first: row.querySelector("[name=first_name]").value.trim(),
        last: row.querySelector("[name=last_name]").value.trim(),
        email: row.querySelector("[name=email]").value.trim(),
        problem: row.dataset.problem,
      }))
      .filter((p) => p.first || p.last || p.email);

  function peopleProblem() {
    const list = people();
    if (!list.length) return "Add at least one person.";
    const bad = list.find((p) => p.problem || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(p.email));
    if (bad) return `Check the email of ${bad.first || bad.email || "a row"}.`;
    return "";
  }

  function checked(name) {
    return [...form.querySelectorAll(`[name=${name}]:checked`)].map(
      (box) => box.closest("label").querySelector(".form-check-label").firstChild.textContent.trim()
    );
  }

  function summarize() {
    const list = people();
    document.getElementById("summary-people").textContent = list
      .map((p) => `${[p.first, p.last].join(" ").trim() || p.email} <${p.email}>`)
      .join(", ");
    const team = form.querySelector("[name=team_id]");
    document.getElementById("summary-team").textContent =
      team.selectedOptions[0] ? team.selectedOptions[0].textContent : "No team";
    document.getElementById("summary-groups").textContent = checked("group_ids").join(", ") || "None";
    document.getElementById("summary-roles").textContent = checked("role_ids").join(", ") || "None";
    document.getElementById("summary-email").textContent = document.getElementById("send-email").checked
      ? "Sent, as previewed"
      : "Not sent (resend it later from Invitations)";
    submit.textContent = `Create ${list.length} user${list.length === 1 ? "" : "s"}`;
  }

  function show(index) {
    current = index;
    steps.forEach((step, i) => (step.hidden = i !== index));
    labels.forEach((label, i) => label.classList.toggle("active", i === index));
    back.hidden = index === 0;
    next.hidden = index === steps.length - 1;
    submit.hidden = index !== steps.length - 1;
    problem.textContent = "";
    if (index === steps.length - 1) summarize();
    // The preview names the first person listed: render it again for the people now listed.
    if (steps[index].querySelector("#preview")) {
      document.getElementById("body").dispatchEvent(new Event("refresh-preview"));
    }
  }

  // Once the people step's problem is solved (a person added, an email fixed), say so.
  function recheckPeople() {
    if (current === 0 && problem.textContent) problem.textContent = peopleProblem();
  }

  next.addEventListener("click", () => {
    const trouble = current === 0 ? peopleProblem() : "";
    if (trouble) {
      problem.textContent = trouble;
      return;
    }
    show(current + 1);
  });
  back.addEventListener("click", () => show(current - 1));

  document.getElementById("add-person").addEventListener("click", () => {
    const row = rows.querySelector(".invite-person").cloneNode(true);
    row.removeAttribute("data-problem");
    row.querySelectorAll("input, select").forEach((input) => {
      input.value = "";
      input.classList.remove("is-invalid");
    });
    row.querySelectorAll(".invalid-feedback").forEach((note) => note.remove());
    rows.appendChild(row);
    row.querySelector("input").focus();
  });
  rows.addEventListener("click", (event) => {
    if (!event.target.matches("[data-remove-row]")) return;
    if (rows.querySelectorAll(".invite-person").length > 1) event.target.closest(".invite-person").remove();
    recheckPeople();
  });
  rows.addEventListener("input", (event) => {
    const row = event.target.closest(".invite-person");
    if (row && event.target.name === "email") {
      row.removeAttribute("data-problem");
      event.target.classList.remove("is-invalid");
    }
    recheckPeople();
  });
  rows.addEventListener("htmx:afterSwap", recheckPeople);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.tagName === "INPUT" && current < steps.length - 1) {
      event.preventDefault();
      next.click();
    }
  });
  show(0);
})();
