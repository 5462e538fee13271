"""OIDC login (third-party initiated) and id_token validation, per the 1EdTech Security Framework.

State never needs a third-party cookie: it is a signed token carrying our nonce and the hash of a
random *binding* value the browser keeps (LTI Platform Storage, sessionStorage, or a
`SameSite=None; Secure` cookie). A launch must present the binding that hashes to the one signed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from sqlalchemy import delete
from sqlalchemy.orm import Session

from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.core.db import affected_rows, insert_missing
from studyshelf.core.errors import StudyShelfError
from studyshelf.core.keys import KeyRing, Purpose, TokenExpired, TokenRefused
from studyshelf.core.outbound import OutboundClient
from studyshelf.delivery.embed import origin_of
from studyshelf.lti.models import PickerSession, Registration, UsedNonce
from studyshelf.lti.platform_keys import JwksUnavailable, PlatformKeys
from studyshelf.web.i18n import N_

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
LEEWAY = 60  # seconds of clock disagreement tolerated on exp / iat
MAX_TOKEN_AGE = 3600  # an iat older than this is refused even when exp is far away
TARGET_PARAM = "studyshelf_target"
LINK_HISTORY_PARAM = "resource_link_history"  # $ResourceLink.id.history: the links this one was copied from
CONTEXT_HISTORY_PARAM = "context_history"  # $Context.id.history: the courses this one was copied from
PRUNE_ONE_IN = 200  # launches between clean-ups of used nonces, on average


class LaunchRefused(StudyShelfError):
    """A login or launch that must not go on; `detail` says why, for the page in the LMS frame."""

    status = 400
    type_slug = "lti-launch-refused"
    title = N_("This launch could not be accepted")


class LaunchUnauthorized(LaunchRefused):
    status = 401


class LaunchUnverified(LaunchRefused):
    """The browser presenting the launch is not the one that started it, or kept nothing to prove it is."""

    status = 403
    title = N_("This launch could not be verified")


UNVERIFIED = N_(
    "StudyShelf could not verify that this launch was started in this browser window (it may have been opened "
    "in another browser, or the page was reloaded). Open the activity again from the course."
)
STORAGE_BLOCKED = N_(
    "Your browser blocked the storage StudyShelf needs inside the course page, so this launch cannot be verified. "
    "Allow cookies for this site, or open the activity again from the course in a new window."
)


def binding_hash(binding: str) -> str:
    return hashlib.sha256(f"studyshelf-lti-binding|{binding}".encode()).hexdigest()[:32]


def binding_cookie(nonce: str) -> str:
    """Cookie name for one login's binding (several tools can launch at once in one LMS page)."""
    return "studyshelf_lti_" + hashlib.sha256(nonce.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class State:
    registration_id: uuid.UUID
    nonce: str
    binding_hash: str
    expires: int
    storage_target: str
    storage_origin: str


def sign_state(keys: KeyRing, state: State) -> str:
    payload = {
        "r": str(state.registration_id),
        "n": state.nonce,
        "b": state.binding_hash,
        "e": state.expires,
        "t": state.storage_target,
        "o": state.storage_origin,
    }
    return keys.encode(Purpose.LTI_STATE, payload, state.expires)


def read_state(keys: KeyRing, token: str, *, now: float) -> State:
    """The state we signed at login, or LaunchRefused (tampered, foreign or expired)."""
    try:
        payload = keys.decode(Purpose.LTI_STATE, token, now)
    except TokenExpired as exc:
        raise LaunchRefused(
            N_("The launch took too long to complete. Start the activity again from the course.")
        ) from exc
    except TokenRefused as exc:
        raise LaunchRefused(
            N_("The launch state is not one StudyShelf issued. Start the activity again from the course.")
        ) from exc
    try:
        return State(
            registration_id=uuid.UUID(payload["r"]),
            nonce=str(payload["n"]),
            binding_hash=str(payload["b"]),
            expires=int(payload["e"]),
            storage_target=str(payload.get("t", "")),
            storage_origin=str(payload.get("o", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LaunchRefused("The launch state is malformed.") from exc


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and what it must keep to prove the launch is its own."""

    redirect_url: str
    state: str
    nonce: str
    binding: str
    storage_target: str
    storage_origin: str


def start_login(
    registration: Registration,
    *,
    keys: KeyRing,
    ttl: int,
    redirect_uri: str,
    login_hint: str,
    lti_message_hint: str | None,
    storage_target: str | None,
    now: datetime,
) -> LoginStart:
    """Build the authentication request to the platform (step 2), with a fresh nonce and signed state."""
    nonce = secrets.token_urlsafe(24)
    binding = secrets.token_urlsafe(24)
    storage_origin = origin_of(registration.auth_url) or ""
    state = sign_state(
        keys,
        State(
            registration_id=registration.id,
            nonce=nonce,
            binding_hash=binding_hash(binding),
            expires=int(now.timestamp()) + ttl,
            storage_target=(storage_target or "")[:100],
            storage_origin=storage_origin,
        ),
    )
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": registration.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if lti_message_hint:
        params["lti_message_hint"] = lti_message_hint
    separator = "&" if "?" in registration.auth_url else "?"
    return LoginStart(
        redirect_url=registration.auth_url + separator + urlencode(params),
        state=state,
        nonce=nonce,
        binding=binding,
        storage_target=(storage_target or "")[:100],
        storage_origin=storage_origin,
    )


def check_binding(state: State, binding: str | None, *, storage_blocked: bool = False) -> None:
    """Refuse a launch whose browser binding is missing or foreign (storage_blocked: the page could not look)."""
    if binding is None and storage_blocked:
        raise LaunchUnverified(STORAGE_BLOCKED)
    if binding is None or not hmac.compare_digest(binding_hash(binding), state.binding_hash):
        raise LaunchUnverified(UNVERIFIED)


def unverified_issuer(token: str) -> tuple[str, str | None]:
    """iss and (first) aud of a token, unverified: only to find the registration to verify with."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise LaunchRefused("The id_token is not a JWT.") from exc
    aud = claims.get("aud")
    first = aud[0] if isinstance(aud, list) and aud else aud
    return str(claims.get("iss", "")), str(first) if isinstance(first, str) else None


def signing_key(
    token: str, registration: Registration, keys: PlatformKeys, client: OutboundClient, max_age: float
) -> Any:
    """The platform key that signed the token, from its JWKS (fetched through the outbound client, cached)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise LaunchRefused("The id_token is not a JWT.") from exc
    if header.get("alg") != "RS256":
        raise LaunchUnauthorized(f"The id_token must be signed with RS256, not {header.get('alg')!r}.")
    kid = header.get("kid")
    try:
        key = keys.key_for(client, registration.jwks_url, kid if isinstance(kid, str) else None, max_age=max_age)
    except JwksUnavailable as exc:
        raise LaunchRefused(f"The platform's public keys could not be fetched ({exc}).") from exc
    if key is None:
        raise LaunchUnauthorized(f"The id_token was signed with a key the platform does not publish (kid {kid!r}).")
    return key


def _decode(token: str, key: Any, registration: Registration) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=registration.client_id,
            issuer=registration.issuer,
            # Times are checked in _check_times against the services' clock, not PyJWT's time.time().
            options={
                "require": ["exp", "iat", "iss", "aud", "nonce"],
                "strict_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise LaunchUnauthorized("The id_token is meant for another tool (aud).") from exc
    except jwt.InvalidIssuerError as exc:
        raise LaunchUnauthorized("The id_token comes from another platform (iss).") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRefused(f"The id_token lacks the required claim {exc.claim!r}.") from exc
    except jwt.PyJWTError as exc:
        raise LaunchUnauthorized(f"The id_token's signature or format is not valid ({exc}).") from exc
    return claims


def _check_times(claims: dict[str, Any], now: float) -> None:
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < now - LEEWAY:
        raise LaunchUnauthorized(N_("The id_token has expired. Start the activity again."))
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + LEEWAY):
        raise LaunchUnauthorized("The id_token is not valid yet (check the LMS server's clock).")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + LEEWAY:
        raise LaunchUnauthorized("The id_token is dated in the future (check the LMS server's clock).")
    if iat < now - MAX_TOKEN_AGE - LEEWAY:
        raise LaunchUnauthorized("The id_token was issued too long ago.")


def _check_audience(claims: dict[str, Any], client_id: str) -> None:
    aud = claims["aud"]
    audiences = aud if isinstance(aud, list) else [aud]
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise LaunchUnauthorized("The id_token has several audiences but no azp.")
    if azp is not None and azp != client_id:
        raise LaunchUnauthorized("The id_token was issued to another party (azp).")


def _require(claims: dict[str, Any], name: str, kind: type) -> Any:
    value = claims.get(CLAIM + name)
    if not isinstance(value, kind):
        raise LaunchRefused(f"The launch lacks the required claim {CLAIM + name}.")
    return value


def _check_lti(claims: dict[str, Any], registration: Registration) -> str:
    if claims.get(CLAIM + "version") != "1.3.0":
        raise LaunchRefused("Only LTI 1.3.0 launches are supported.")
    message_type = claims.get(CLAIM + "message_type")
    if message_type not in {RESOURCE_LINK, DEEP_LINKING}:
        raise LaunchRefused(f"StudyShelf does not handle the message type {message_type!r}.")
    deployment = _require(claims, "deployment_id", str)
    if deployment not in registration.deployments:
        raise LaunchUnauthorized(
            f"The deployment {deployment!r} is not registered for this platform in StudyShelf. "
            "A partner administrator can add it under Organisation → LMS connections."
        )
    if message_type == RESOURCE_LINK:
        link = _require(claims, "resource_link", dict)
        if not isinstance(link.get("id"), str) or not link["id"]:
            raise LaunchRefused("The launch lacks the resource link id.")
        _require(claims, "roles", list)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LaunchRefused("The launch lacks the user (sub).")
    else:
        settings = claims.get(DL_CLAIM + "deep_linking_settings")
        if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str):
            raise LaunchRefused("The deep-linking request lacks deep_linking_settings.deep_link_return_url.")
        if not isinstance(settings.get("accept_types"), list):
            raise LaunchRefused("The deep-linking request lacks accept_types.")
    return str(message_type)


@dataclass(frozen=True)
class ValidLaunch:
    registration: Registration
    message_type: str
    deployment_id: str
    claims: dict[str, Any]


def validate_id_token(
    db: Session,
    *,
    token: str,
    registration: Registration,
    state: State,
    keys: PlatformKeys,
    client: OutboundClient,
    jwks_max_age: float,
    now: datetime,
) -> ValidLaunch:
    """Verify the id_token completely, then spend its nonce (the last step, so a refusal stores nothing)."""
    key = signing_key(token, registration, keys, client, jwks_max_age)
    claims = _decode(token, key, registration)
    _check_times(claims, now.timestamp())
    _check_audience(claims, registration.client_id)
    if not hmac.compare_digest(str(claims["nonce"]), state.nonce):
        raise LaunchUnauthorized("The id_token's nonce is not the one of this login.")
    message_type = _check_lti(claims, registration)
    spend_nonce(db, nonce=state.nonce, expires=int(claims["exp"]), now=now)
    return ValidLaunch(registration, message_type, str(claims[CLAIM + "deployment_id"]), claims)


def spend_nonce(db: Session, *, nonce: str, expires: int, now: datetime) -> None:
    """Record a nonce as used; a second use is refused, on whichever instance it arrives.

    One INSERT … ON CONFLICT DO NOTHING settles a race between instances: the later one waits for the
    first's commit and makes no row. The row outlives the token's acceptance on every instance: it is
    accepted until exp + LEEWAY by the slowest clock, and pruned by the fastest, up to 2 × CLOCK_SKEW apart.
    """
    key = hashlib.sha256(nonce.encode()).hexdigest()
    kept_until = datetime.fromtimestamp(expires + LEEWAY + 2 * CLOCK_SKEW, UTC)
    if not insert_missing(db, UsedNonce, {"nonce": key, "expires_at": kept_until}):
        raise LaunchUnauthorized(N_("This launch was already used (replayed nonce). Start the activity again."))
    # The scheduler (jobs/) sits below lti in the layers, so launches tidy up after themselves now and then.
    if secrets.randbelow(PRUNE_ONE_IN) == 0:
        prune(db, now=now)


def prune(db: Session, now: datetime) -> int:
    """Forget nonces whose tokens have expired and picker sessions that ended (neither can be used again)."""
    nonces = db.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
    pickers = db.execute(delete(PickerSession).where(PickerSession.expires_at < now))
    return affected_rows(nonces) + affected_rows(pickers)
