"""A throwaway service-account key for local URL signing (dev topology and tests only)."""

from __future__ import annotations


def generate_service_account_info(project: str, email: str | None = None) -> dict:
    """Key-file JSON with a fresh RSA key; it signs real V4 URLs, but no Google service knows it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = email or f"upload-url@{project}.iam.gserviceaccount.com"
    return {
        "type": "service_account", "project_id": project, "private_key_id": "local", "private_key": pem,
        "client_email": email, "client_id": "0", "token_uri": "https://oauth2.googleapis.com/token",
    }
