"""AWS adapters: the DynamoDB message store and the API Gateway / DynamoDB Streams event shapes.

Only this package and ``handlers.aws`` import boto3/botocore.
"""
