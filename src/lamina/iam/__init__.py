"""Identity for Lamina: IAM roles, managed and inline policies, users and access keys, and STS
sessions. The core (no HTTP): `IamService` keeps the entities, `TokenService` answers who a caller
is and issues temporary credentials. Policies are stored and returned, not enforced (docs/iam.md).
"""

from lamina.iam.service import IamService
from lamina.iam.tokens import TokenService

__all__ = ["IamService", "TokenService"]
