"""LTI 1.3: tool keys, platform registrations, OIDC login and launch, deep linking, dynamic registration."""
