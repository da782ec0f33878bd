"""The benchmark's three requests written as most AWS-only teams would write them: Powertools'
APIGatewayHttpResolver, the same low-level DynamoDB calls, items turned into JSON by hand. No
logger, no validation beyond what the routes need: a lower bound for a framework-based handler,
measured beside ours so the per-request ratio has a reference from outside this project.

Only ``bench aws`` imports this (the Powertools package is a tools extra, never deployed)."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response


def build_handler(client: Any, table: str, new_id: Any) -> Any:
    """A Lambda handler ``(event, context) -> response`` over ``client`` (a DynamoDB client)."""
    app = APIGatewayHttpResolver()

    def to_json(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["sk"]["S"],
            "channel": item["pk"]["S"],
            "author": item.get("author", {}).get("S", ""),
            "text": item.get("text", {}).get("S", ""),
            "created_ms": int(item["created_ms"]["N"]),
        }

    @app.post("/channels/<channel>/messages")
    def post(channel: str) -> Response[str]:
        body = app.current_event.json_body
        now = int(time.time() * 1000)
        message_id = new_id(now)
        item = {
            "pk": {"S": channel},
            "sk": {"S": message_id},
            "created_ms": {"N": str(now)},
            "sort_key": {"S": f"{now:013d}~{message_id}"},  # the listing index's key
            "author": {"S": body["author"]},
            "text": {"S": body["text"]},
        }
        client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return Response(201, "application/json", json.dumps(to_json(item)))

    @app.get("/channels/<channel>/messages/<message_id>")
    def get(channel: str, message_id: str) -> Any:
        key = {"pk": {"S": channel}, "sk": {"S": message_id}}
        found = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if found is None:
            return Response(404, "application/json", json.dumps({"error": "not found"}))
        return to_json(found)

    @app.get("/channels/<channel>/messages")
    def listing(channel: str) -> Any:
        limit = int(app.current_event.get_query_string_value("limit", "50") or "50")
        page = client.query(
            TableName=table,
            IndexName="by_sort_key",
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": {"S": channel}},
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=limit + 1,
        )
        return {"items": [to_json(i) for i in page["Items"][:limit]]}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
