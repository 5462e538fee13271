"""LTI routes the LMS and the learner's browser call: JWKS, OIDC login, launch, and the launched viewer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import NotFound
from studyshelf.delivery import hits, viewing
from studyshelf.delivery.content import ScopeFacts
from studyshelf.delivery.embed import origin_of
from studyshelf.library.models import File, Folder
from studyshelf.lti import deep_linking, keys, launch, resource
from studyshelf.lti.material import Target, reach, within
from studyshelf.lti.models import Launch, Registration
from studyshelf.lti.platform_keys import platform_keys
from studyshelf.lti.registrations import find_registration
from studyshelf.lti.web import error_page, headers, launch_url
from studyshelf.partners.deps import Now, ServicesDep
from studyshelf.services import Services
from studyshelf.web.i18n import N_
from studyshelf.web.render import render, set_launch_locale
from studyshelf.web.security import is_https

router = APIRouter(include_in_schema=False)
OptionalForm = Annotated[str | None, Form()]


def platform_lms(product_family: str) -> str:
    """The analytics LMS of an LTI platform's `tool_platform.product_family_code` ("" when it sent none)."""
    family = product_family.lower()
    return "moodle" if "moodle" in family else "canvas" if "canvas" in family else "other" if family else ""


def _launch_scope(db: Session, scope: str) -> ScopeFacts | None:
    """Whom the media of a launch serve: the launch's partner, course and resource link."""
    try:
        record = resource.launch_from_scope(db, scope)
    except NotFound:
        return None
    return ScopeFacts(str(record.org_id), course=record.context_id, resource_link=record.resource_link_id)


hits.register_scope(resource.SCOPE_PREFIX, _launch_scope)


@router.get("/lti/jwks")
@router.get("/.well-known/jwks.json")
def jwks(services: ServicesDep, now: Now) -> JSONResponse:
    """StudyShelf's public keys (the active one and those in their grace period)."""
    settings = services.settings
    with unit_of_work(services.write_sessions) as db:
        keys.ensure_key(db, keys=services.keys, now=now)
        body = keys.jwks(db, grace_days=settings.lti_key_grace_days, now=now)
    # The max-age is the pre-publication delay's basis (keys.switch_delay): a rotated key signs only after it.
    cache = f"public, max-age={settings.lti_jwks_cache_seconds}"
    return JSONResponse(body, headers={"cache-control": cache, "access-control-allow-origin": "*"})


def _login(request: Request, services: Services, params: dict[str, str | None], now: datetime) -> Response:
    settings = services.settings
    issuer, hint = params.get("iss"), params.get("login_hint")
    target = params.get("target_link_uri") or ""
    if not issuer or not hint:
        return error_page(
            request, status=400, headline="This launch is incomplete", message="The LMS sent no iss or login_hint."
        )
    if origin_of(target) != origin_of(settings.base_url):
        return error_page(
            request, status=400, headline="This launch is not for StudyShelf", message="target_link_uri is not ours."
        )
    deployment = params.get("lti_deployment_id") or params.get("deployment_id")
    with unit_of_work(services.read_sessions) as db:
        registration = find_registration(db, issuer=issuer, client_id=params.get("client_id"))
        if registration is None:
            return error_page(
                request,
                status=400,
                headline="This LMS is not connected to StudyShelf",
                message=f"No registration for issuer {issuer} and client ID {params.get('client_id') or '(none)'}.",
            )
        if deployment and deployment not in registration.deployments:
            return error_page(
                request,
                status=403,
                headline="This LMS deployment is not registered",
                message=f"Ask a StudyShelf partner administrator to add deployment ID {deployment}.",
            )
        start = launch.start_login(
            registration,
            keys=services.keys,
            ttl=settings.lti_state_ttl_seconds,
            redirect_uri=launch_url(settings),
            login_hint=hint,
            lti_message_hint=params.get("lti_message_hint"),
            storage_target=params.get("lti_storage_target"),
            now=now,
        )
    relaunch = "/lti/login?" + urlencode({k: v for k, v in params.items() if v})
    secure = is_https(request.scope, settings.trusted_proxies)
    context = {
        "title": N_("Opening…"),
        "start": start,
        "cookie_key": launch.binding_cookie(start.nonce),
        "relaunch": relaunch,
        "secure": secure,
    }
    response = render(request, "lti/login.html", context, headers=headers(frames=None))
    response.set_cookie(
        launch.binding_cookie(start.nonce),
        start.binding,
        max_age=settings.lti_state_ttl_seconds,
        path="/lti/",
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",  # browsers drop SameSite=None cookies that are not Secure
    )
    return response


_LOGIN_FIELDS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
    "deployment_id",
    "lti_storage_target",
)


@router.get("/lti/login")
def login_get(request: Request, services: ServicesDep, now: Now) -> Response:
    """Third-party initiated login (GET): answer with the redirect to the platform's auth endpoint."""
    return _login(request, services, {k: request.query_params.get(k) for k in _LOGIN_FIELDS}, now=now)


@router.post("/lti/login")
async def login_post(request: Request, services: ServicesDep, now: Now) -> Response:
    """Third-party initiated login (POST, as Moodle and Canvas send it)."""
    form = await request.form()
    params = {k: (str(form[k]) if k in form else request.query_params.get(k)) for k in _LOGIN_FIELDS}
    return await run_in_threadpool(_login, request, services, params, now=now)


@router.post("/lti/launch")
def launch_post(
    request: Request,
    services: ServicesDep,
    now: Now,
    id_token: OptionalForm = None,
    state: OptionalForm = None,
    binding: OptionalForm = None,
    checked: OptionalForm = None,
    storage: OptionalForm = None,
    error: OptionalForm = None,
    error_description: OptionalForm = None,
) -> Response:
    """The platform's form post of id_token + state: validate everything, then show what was asked for."""
    if error:
        return error_page(
            request, status=400, headline=N_("The LMS refused the launch"), message=error_description or error
        )
    if not id_token or not state:
        return error_page(
            request,
            status=400,
            headline=N_("This launch is incomplete"),
            message=N_("id_token and state are required."),
        )
    try:
        signed = launch.read_state(services.keys, state, now=now.timestamp())
        binding = binding or request.cookies.get(launch.binding_cookie(signed.nonce))
        if binding is None and not checked:  # no cookie in this frame: the page finds the binding in browser storage
            context = {
                "title": N_("Opening…"),
                "id_token": id_token,
                "state": signed,
                "state_token": state,
                "key": launch.binding_cookie(signed.nonce),
            }
            return render(request, "lti/launch_check.html", context, headers=headers(frames=None))
        launch.check_binding(signed, binding, storage_blocked=storage == "blocked")
        _fetch_platform_key(services, signed, id_token)
        with unit_of_work(services.write_sessions) as db:
            return _accept(request, services, db, signed, id_token, now)
    except launch.LaunchRefused as refused:
        set_launch_locale(request, resource.claimed_locale(id_token))
        return error_page(request, status=refused.status, headline=refused.title, message=refused.detail)


def _fetch_platform_key(services: Services, signed: launch.State, id_token: str) -> None:
    """Fetch (or find cached) the platform's key before the write transaction, so no write lock waits on it."""
    with unit_of_work(services.read_sessions) as db:
        registration = db.get(Registration, signed.registration_id)
    if registration is not None:
        max_age = services.settings.lti_jwks_cache_seconds
        launch.signing_key(id_token, registration, platform_keys, services.outbound, max_age)


def _accept(
    request: Request, services: Services, db: Session, signed: launch.State, id_token: str, now: datetime
) -> Response:
    settings = services.settings
    registration = db.get(Registration, signed.registration_id)
    if registration is None:
        raise launch.LaunchRefused("This LMS is no longer connected to StudyShelf.")
    valid = launch.validate_id_token(
        db,
        token=id_token,
        registration=registration,
        state=signed,
        keys=platform_keys,
        client=services.outbound,
        jwks_max_age=settings.lti_jwks_cache_seconds,
        now=now,
    )
    if valid.message_type == launch.DEEP_LINKING:
        try:
            session = deep_linking.start_picker(db, valid=valid, now=now)
        except deep_linking.NotAccepted as exc:
            message = (
                "StudyShelf adds material as LTI links (ltiResourceLink), which this place in the LMS does not take "
                f"(it accepts: {', '.join(exc.accept_types) or 'nothing'}). Use Modules → External Tool, "
                "or Add an activity → External tool, instead."
            )
            return error_page(request, status=400, headline=N_("StudyShelf cannot add content here"), message=message)
        token = deep_linking.picker_token(services.keys, session)
        return RedirectResponse(f"/lti/pick/{session.id}?t={token}", status_code=303)
    record, _item = resource.accept_resource_launch(db, valid=valid, keys=services.keys, now=now)
    # Answer the POST with a redirect, so reloading the frame shows the material instead of replaying the launch.
    scope = resource.scope_id(record.id)
    token = viewing.viewer_token(services.keys, scope, int(services.clock.time()) + viewing.VIEWER_TOKEN_SECONDS)
    return RedirectResponse(f"/lti/view/{scope}?" + urlencode({"t": token}), status_code=303)


def _frames(record: Launch) -> list[str]:
    return [o for o in record.frame_origins.split("\n") if o]


def launch_scope(record: Launch) -> viewing.ViewScope:
    """The view scope of an LTI launch: its partner, course, resource link and platform; no downloads."""
    scope = resource.scope_id(record.id)
    facts = ScopeFacts(
        str(record.org_id),
        course=record.context_id,
        resource_link=record.resource_link_id,
        lms=platform_lms(record.product_family),
    )
    return viewing.ViewScope(
        kind="lti",
        scope_id=scope,
        facts=facts,
        root_type=record.target_type,
        root_id=record.target_id,
        allow_download=False,
        renew_url=f"/lti/media/{scope}",
        headers=headers(frames=_frames(record)),
    )


class LaunchAccess:
    """LTI launches as a view scope: reopened for a renewal while the launch's partner still reaches the item."""

    def open(self, services: Services, request: Request, scope_id: str) -> viewing.ViewScope:
        with unit_of_work(services.read_sessions) as db:
            try:
                return launch_scope(resource.launch_from_scope(db, scope_id))
            except NotFound as exc:
                raise viewing.ViewScopeNotFound(exc.detail) from exc

    def reach(
        self, db: Session, scope: viewing.ViewScope, kind: str, item_id: uuid.UUID, now: datetime
    ) -> File | Folder:
        if not within(db, kind=kind, item_id=item_id, ancestor_id=scope.root_id):
            raise viewing.NotInView("That item is not part of this material.")
        item = reach(db, org_id=uuid.UUID(scope.facts.partner_org_id), target=Target(kind, item_id), now=now)
        if not isinstance(item, File | Folder):
            raise viewing.ViewUnavailable("Access to this material has ended.", reason="grant-revoked")
        return item


LAUNCH_ACCESS = LaunchAccess()


def _show(request: Request, services: Services, db: Session, record: Launch, item: File | Folder) -> Response:
    scope = launch_scope(record)
    if isinstance(item, Folder):
        token = viewing.viewer_token(
            services.keys, scope.scope_id, int(services.clock.time()) + viewing.VIEWER_TOKEN_SECONDS
        )

        def item_url(kind: str, item_id: uuid.UUID) -> str:
            return f"/lti/view/{scope.scope_id}?" + urlencode({"t": token, kind: str(item_id)})

        return viewing.render_folder(request, db, scope, item, item_url=item_url)
    placement = (
        viewing.Placement(name=item.name, views=resource.placement_views(db, record), context=record.context_title)
        if record.role_class == "instructor"
        else None
    )
    return viewing.render_file(request, services, db, scope, item, placement=placement)


@router.get("/lti/view/{scope}")
def view_inside(
    scope: str,
    request: Request,
    services: ServicesDep,
    now: Now,
    t: str = "",
    file: uuid.UUID | None = None,
    folder: uuid.UUID | None = None,
) -> Response:
    """What a launch shows, or a file or folder inside a launched folder (authorised by the token, no cookie)."""
    if not viewing.check_viewer_token(services.keys, scope, t, services.clock.time()):
        return error_page(
            request, status=403, headline=N_("This page has expired"), message=N_("Reopen it from your course.")
        )
    with unit_of_work(services.read_sessions) as db:
        try:
            record = resource.launch_from_scope(db, scope)
        except NotFound:
            return error_page(
                request, status=404, headline=N_("Not found"), message=N_("Reopen the material from your course.")
            )
        set_launch_locale(request, record.locale)
        if file is not None:
            kind, item_id = "file", file
        elif folder is not None:
            kind, item_id = "folder", folder
        else:
            kind, item_id = record.target_type, record.target_id
        try:
            item = LAUNCH_ACCESS.reach(db, launch_scope(record), kind, item_id, now=now)
            return _show(request, services, db, record, item)
        except viewing.NotInView:
            return error_page(
                request, status=404, headline=N_("Not found"), message=N_("That item is not part of this material.")
            )
        except viewing.ViewUnavailable as exc:
            return error_page(request, status=403, headline=N_("This material is no longer shared"), message=exc.detail)


@router.post("/lti/media/{scope}")
def renew(scope: str, body: viewing.RenewRequest, request: Request, services: ServicesDep) -> JSONResponse:
    """Fresh media URLs for a playing launched viewer, while the partner still reaches the file."""
    urls = viewing.renew_media(services, request, LAUNCH_ACCESS, scope_id=scope, body=body)
    return JSONResponse(urls, headers={"cache-control": "no-store"})
