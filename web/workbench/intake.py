"""受理 at the counter, in the browser: pick the item, fill in the applicant, tick the documents brought,
the item's form — then the paper the applicant takes home (受理回执, 一次性告知书, 不予受理通知书).

The form page carries an intake key (idempotency) and, from the browser's draft, the instant the
application was taken: a submit that comes back after the link was down (static/intake.js keeps the
draft) is entered with that time (补录) and never twice. One engine call per POST
(`cases.intake.accept` / `refuse`); a refusal shows the form again with every message beside its field.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from engine import cases, clock, queries
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound

from ..context import current_actor, read, write
from ..form_errors import FORM, place_all
from . import bp

#: a browser clock this far ahead of the server is taken as the server's now (clocks drift; a draft's time
#: further ahead than that is refused by the engine as in the future)
CLOCK_SKEW = timedelta(minutes=5)
REFUSALS = (InvalidInput, Conflict, Forbidden, NotFound)
APPLICANT = ("applicant_name", "applicant_id_number", "applicant_phone", "applicant_address")


@bp.route("/intake")
def intake_items() -> Any:
    actor = current_actor()
    q = request.args.get("q", "").strip()[:40]
    with read() as s:
        if not queries.villages_for(s, actor):
            abort(404)
        items = queries.service_items(s, actor, q)
    return render_template("workbench/intake_items.html", items=items, q=q)


def _accepted_at(text: str | None) -> datetime | None:
    """The draft's acceptance instant (ISO 8601 from the browser), or None for "now"."""
    if not text:
        return None
    try:
        at = clock.to_utc(datetime.fromisoformat(text.strip()[:40]))
    except (ValueError, TypeError):
        raise InvalidInput("the acceptance time is not a valid instant", reason="acceptance.invalid") from None
    now = clock.now()
    return now if now < at <= now + CLOCK_SKEW else at


@bp.route("/intake/<code>", methods=["GET", "POST"])
def intake(code: str) -> Any:
    actor = current_actor()
    with read() as s:
        villages = queries.villages_for(s, actor)
        if not villages:
            abort(404)
        form_def = queries.intake_form(s, code)
    posted = request.form if request.method == "POST" else None
    values: dict[str, Any] = {"intake_key": uuid.uuid4().hex, "when_missing": "supplement",
                              "village": villages[0].code if len(villages) == 1 else ""}
    errors: dict[str, str] = {}
    brought: list[str] = []  # the clerk ticks what the applicant brought
    if posted is not None:
        values.update({k: v for k, v in posted.items() if k != "csrf_token"})
        brought = posted.getlist("documents")
        data = {f.id: posted.get(f.id, "") for f in form_def.fields if posted.get(f.id, "") != ""}
        applicant = {k: posted.get(k, "") for k in APPLICANT}
        refusing = posted.get("action") == "refuse"
        try:
            with write() as s:
                if refusing:
                    result = cases.intake.refuse(
                        s, service_code=code, village_code=posted.get("village", ""), actor=actor,
                        applicant=applicant, reason=posted.get("refusal_reason", ""),
                        intake_key=posted.get("intake_key") or None)
                else:
                    result = cases.intake.accept(
                        s, service_code=code, village_code=posted.get("village", ""), actor=actor,
                        applicant=applicant, documents=brought, data=data, remarks=posted.get("remarks"),
                        when_missing=posted.get("when_missing", "supplement"),
                        accepted_at=_accepted_at(posted.get("accepted_at")),
                        intake_key=posted.get("intake_key") or None)
        except REFUSALS as exc:
            names = [*APPLICANT, *(f.id for f in form_def.fields), "documents", "village", "remarks",
                     "refusal_reason", "accepted_at"]
            errors = place_all(exc, names)
            if exc.reason in ("acceptance.too_early", "acceptance.in_future", "acceptance.invalid"):
                errors = {"accepted_at": errors.pop(FORM, ""), **errors}
        else:
            if result.case_number:
                return redirect(url_for("workbench.receipt", number=result.case_number,
                                        repeated=1 if result.repeated else None), code=303)
            return redirect(url_for("workbench.notice_page", notice_id=result.notice_id,
                                    repeated=1 if result.repeated else None), code=303)
    status = 422 if errors else 200
    return render_template("workbench/intake.html", form_def=form_def, item=form_def.item, villages=villages,
                           values=values, brought=set(brought), errors=errors), status


@bp.route("/cases/<number>/receipt")
def receipt(number: str) -> Any:
    with read() as s:
        paper = queries.receipt(s, number, current_actor())
    return render_template("workbench/receipt.html", paper=paper, repeated=bool(request.args.get("repeated")))


@bp.route("/notices/<int:notice_id>")
def notice_page(notice_id: int) -> Any:
    with read() as s:
        paper = queries.notice(s, notice_id, current_actor())
    return render_template("workbench/notice.html", paper=paper, repeated=bool(request.args.get("repeated")))

