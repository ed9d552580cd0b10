"""Local stand-ins for remote services, speaking their real wire protocols for the real SDKs."""
