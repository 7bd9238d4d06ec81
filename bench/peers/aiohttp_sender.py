"""The hand-written peer: read the orders CSV and POST one 8x8 message per row with
aiohttp, CONCURRENCY requests in flight over one keep-alive session — what a developer
would write instead of a tool. Nothing is ledgered or remembered.

    python aiohttp_sender.py BASE_URL orders.csv CONCURRENCY
"""

import asyncio
import csv
import sys

import aiohttp


async def main(base: str, path: str, concurrency: int) -> None:
    url = f"{base}/api/v1/subaccounts/shop_main/messages"
    headers = {"Authorization": "Bearer bench-key"}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    gate = asyncio.Semaphore(concurrency)
    failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(row: dict) -> None:
            nonlocal failed
            body = {
                "destination": row["phone"],
                "source": "MyShop",
                "text": f"Hi {row['name']}, order {row['order_id']} is confirmed.",
                "clientMessageId": f"single:{row['order_id']}",
            }
            async with gate:
                async with session.post(url, json=body) as response:
                    await response.read()
                    if response.status >= 300:
                        failed += 1

        await asyncio.gather(*(send(row) for row in rows))
    if failed:
        sys.exit(f"{failed} sends failed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
