"""The IAM API (query protocol, botocore model `iam/2010-05-08`): params ↔ IamService.

Policy documents go out URL-encoded, as IAM sends them (boto3 and the AWS CLI decode them back
into a dict: botocore's `json_decode_policies`). Timestamps go out in whole seconds, as IAM's.
Operations that may omit UserName act on the caller's own user, known by its access key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from lamina.api.context import Handler, RequestContext
from lamina.errors import NoSuchEntity, ValidationError
from lamina.iam.service import IamService
from lamina.iam.tokens import TokenService
from lamina.model.iam import AccessKey, ManagedPolicy, Role, Tags, User

Params = dict[str, Any]
T = TypeVar("T")


def when(epoch: float) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


def encoded(document: str) -> str:
    return quote(document, safe="")


def tags_in(params: Params) -> Tags:
    return tuple((t["Key"], t.get("Value", "")) for t in params.get("Tags", ()))


def tags_out(tags: Tags) -> list[dict[str, str]] | None:
    return [{"Key": k, "Value": v} for k, v in tags] or None


def paged(marker: str | None) -> dict[str, Any]:
    return {"IsTruncated": marker is not None, "Marker": marker}


class IamApi:
    def __init__(self, iam: IamService, tokens: TokenService) -> None:
        self.iam = iam
        self.tokens = tokens

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateRole": self.create_role,
            "GetRole": self.get_role,
            "ListRoles": self.list_roles,
            "DeleteRole": self.delete_role,
            "UpdateAssumeRolePolicy": self.update_assume_role_policy,
            "UpdateRole": self.update_role,
            "ListRoleTags": self.list_role_tags,
            "TagRole": self.tag_role,
            "UntagRole": self.untag_role,
            "ListInstanceProfilesForRole": self.list_instance_profiles_for_role,
            "PutRolePolicy": self.put_role_policy,
            "GetRolePolicy": self.get_role_policy,
            "DeleteRolePolicy": self.delete_role_policy,
            "ListRolePolicies": self.list_role_policies,
            "AttachRolePolicy": self.attach_role_policy,
            "DetachRolePolicy": self.detach_role_policy,
            "ListAttachedRolePolicies": self.list_attached_role_policies,
            "CreatePolicy": self.create_policy,
            "GetPolicy": self.get_policy,
            "GetPolicyVersion": self.get_policy_version,
            "ListPolicyVersions": self.list_policy_versions,
            "DeletePolicy": self.delete_policy,
            "ListPolicies": self.list_policies,
            "CreateUser": self.create_user,
            "GetUser": self.get_user,
            "ListUsers": self.list_users,
            "DeleteUser": self.delete_user,
            "CreateAccessKey": self.create_access_key,
            "ListAccessKeys": self.list_access_keys,
            "UpdateAccessKey": self.update_access_key,
            "GetAccessKeyLastUsed": self.get_access_key_last_used,
            "DeleteAccessKey": self.delete_access_key,
        }

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- wire shapes ---------------------------------------------------------------------------
    def role(self, role: Role, *, full: bool = True) -> dict[str, Any]:
        out = {
            "Path": role.path,
            "RoleName": role.name,
            "RoleId": role.id,
            "Arn": self.iam.role_arn(role),
            "CreateDate": when(role.created),
            "AssumeRolePolicyDocument": encoded(role.trust_policy),
            "Description": role.description,
            "MaxSessionDuration": role.max_session_duration,
        }
        if full:
            out["Tags"] = tags_out(role.tags)
            out["RoleLastUsed"] = {}
        return out

    def policy(self, arn: str, policy: ManagedPolicy, attachments: int) -> dict[str, Any]:
        return {
            "PolicyName": policy.name,
            "PolicyId": policy.id,
            "Arn": arn,
            "Path": policy.path,
            "DefaultVersionId": "v1",
            "AttachmentCount": attachments,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True,
            "Description": policy.description,
            "CreateDate": when(policy.created),
            "UpdateDate": when(policy.updated),
            "Tags": tags_out(policy.tags),
        }

    def user(self, user: User) -> dict[str, Any]:
        return {
            "Path": user.path,
            "UserName": user.name,
            "UserId": user.id,
            "Arn": self.iam.user_arn(user),
            "CreateDate": when(user.created),
            "Tags": tags_out(user.tags),
        }

    @staticmethod
    def key(key: AccessKey, *, secret: bool = False) -> dict[str, Any]:
        out = {
            "UserName": key.user,
            "AccessKeyId": key.id,
            "Status": key.status,
            "CreateDate": when(key.created),
        }
        if secret:
            out["SecretAccessKey"] = key.secret
        return out

    # --- roles ---------------------------------------------------------------------------------
    async def create_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        role = await self._run(
            self.iam.create_role,
            params["RoleName"],
            params["AssumeRolePolicyDocument"],
            path=params.get("Path", "/"),
            description=params.get("Description"),
            max_session_duration=params.get("MaxSessionDuration"),
            tags=tags_in(params),
        )
        return {"Role": self.role(role)}

    async def get_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        return {"Role": self.role(await self._run(self.iam.get_role, params["RoleName"]))}

    async def list_roles(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        roles, marker = await self._run(
            self.iam.list_roles, params.get("PathPrefix"), params.get("Marker"), params.get("MaxItems")
        )
        return {"Roles": [self.role(r, full=False) for r in roles], **paged(marker)}

    async def delete_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.delete_role, params["RoleName"])
        return {}

    async def update_assume_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.update_assume_role_policy, params["RoleName"], params["PolicyDocument"])
        return {}

    async def update_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(
            self.iam.update_role, params["RoleName"], params.get("Description"), params.get("MaxSessionDuration")
        )
        return {}

    async def list_role_tags(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        role = await self._run(self.iam.get_role, params["RoleName"])
        return {"Tags": tags_out(role.tags) or [], "IsTruncated": False}

    async def tag_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.tag_role, params["RoleName"], tags_in(params))
        return {}

    async def untag_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.untag_role, params["RoleName"], params["TagKeys"])
        return {}

    async def list_instance_profiles_for_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.get_role, params["RoleName"])
        return {"InstanceProfiles": [], "IsTruncated": False}  # Lamina has no instance profiles

    # --- inline policies -----------------------------------------------------------------------
    async def put_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.put_role_policy, params["RoleName"], params["PolicyName"], params["PolicyDocument"])
        return {}

    async def get_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        role = await self._run(self.iam.get_role, params["RoleName"])
        name, document = await self._run(self.iam.get_role_policy, params["RoleName"], params["PolicyName"])
        return {"RoleName": role.name, "PolicyName": name, "PolicyDocument": encoded(document)}

    async def delete_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.delete_role_policy, params["RoleName"], params["PolicyName"])
        return {}

    async def list_role_policies(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        names, marker = await self._run(
            self.iam.list_role_policies, params["RoleName"], params.get("Marker"), params.get("MaxItems")
        )
        return {"PolicyNames": names, **paged(marker)}

    # --- attachments ---------------------------------------------------------------------------
    async def attach_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.attach_role_policy, params["RoleName"], params["PolicyArn"])
        return {}

    async def detach_role_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.detach_role_policy, params["RoleName"], params["PolicyArn"])
        return {}

    async def list_attached_role_policies(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        pairs, marker = await self._run(
            self.iam.list_attached_role_policies,
            params["RoleName"],
            params.get("PathPrefix"),
            params.get("Marker"),
            params.get("MaxItems"),
        )
        attached = [{"PolicyName": name, "PolicyArn": arn} for name, arn in pairs]
        return {"AttachedPolicies": attached, **paged(marker)}

    # --- managed policies ----------------------------------------------------------------------
    async def create_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        arn, policy = await self._run(
            self.iam.create_policy,
            params["PolicyName"],
            params["PolicyDocument"],
            path=params.get("Path", "/"),
            description=params.get("Description"),
            tags=tags_in(params),
        )
        return {"Policy": self.policy(arn, policy, 0)}

    async def get_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        policy, attachments = await self._run(self.iam.get_policy, params["PolicyArn"])
        return {"Policy": self.policy(params["PolicyArn"], policy, attachments)}

    async def get_policy_version(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        policy, _ = await self._run(self.iam.get_policy, params["PolicyArn"])
        if params["VersionId"] != "v1":
            raise NoSuchEntity(f"Policy {params['PolicyArn']} version {params['VersionId']} does not exist.")
        version = {"Document": encoded(policy.document), "VersionId": "v1", "IsDefaultVersion": True,
                   "CreateDate": when(policy.created)}  # fmt: skip
        return {"PolicyVersion": version}

    async def list_policy_versions(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        policy, _ = await self._run(self.iam.get_policy, params["PolicyArn"])
        version = {"VersionId": "v1", "IsDefaultVersion": True, "CreateDate": when(policy.created)}
        return {"Versions": [version], "IsTruncated": False}

    async def delete_policy(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.delete_policy, params["PolicyArn"])
        return {}

    async def list_policies(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        found, marker = await self._run(
            self.iam.list_policies,
            params.get("Scope"),
            params.get("OnlyAttached", False),
            params.get("PathPrefix"),
            params.get("Marker"),
            params.get("MaxItems"),
        )
        policies = []
        for arn, policy, count in found:
            wire = self.policy(arn, policy, count)
            del wire["Description"], wire["Tags"]  # ListPolicies leaves them out, as IAM does
            policies.append(wire)
        return {"Policies": policies, **paged(marker)}

    # --- users and access keys -----------------------------------------------------------------
    async def _user_name(self, ctx: RequestContext, params: Params) -> str:
        name = params.get("UserName")
        if name is None:
            name = await self._run(self.iam.user_for_key, ctx.access_key_id)
        if name is None:
            raise ValidationError("Must specify userName when calling with non-User credentials")
        return name

    async def create_user(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        user = await self._run(
            self.iam.create_user, params["UserName"], path=params.get("Path", "/"), tags=tags_in(params)
        )
        return {"User": self.user(user)}

    async def get_user(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        name = params.get("UserName") or await self._run(self.iam.user_for_key, ctx.access_key_id)
        if name is None:  # the account's root, as IAM answers it
            root = self.tokens.root()
            return {"User": {"UserId": root.user_id, "Arn": root.arn, "CreateDate": when(0), "Path": "/"}}
        return {"User": self.user(await self._run(self.iam.get_user, name))}

    async def list_users(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        users, marker = await self._run(
            self.iam.list_users, params.get("PathPrefix"), params.get("Marker"), params.get("MaxItems")
        )
        wire = []
        for user in users:
            out = self.user(user)
            del out["Tags"]
            wire.append(out)
        return {"Users": wire, **paged(marker)}

    async def delete_user(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        await self._run(self.iam.delete_user, params["UserName"])
        return {}

    async def create_access_key(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        key = await self._run(self.iam.create_access_key, await self._user_name(ctx, params))
        return {"AccessKey": self.key(key, secret=True)}

    async def list_access_keys(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        keys = await self._run(self.iam.list_access_keys, await self._user_name(ctx, params))
        return {"AccessKeyMetadata": [self.key(k) for k in keys], "IsTruncated": False}

    async def get_access_key_last_used(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        key = await self._run(self.iam.get_access_key, params["AccessKeyId"])
        # Use is not tracked (it would cost a write per request): "N/A", as IAM says of unused keys.
        return {"UserName": key.user, "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}

    async def update_access_key(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        user = await self._user_name(ctx, params)
        await self._run(self.iam.update_access_key, user, params["AccessKeyId"], params["Status"])
        return {}

    async def delete_access_key(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        user = await self._user_name(ctx, params)
        await self._run(self.iam.delete_access_key, user, params["AccessKeyId"])
        return {}
