//! Pushes a JSON Lines file of Push API items (each with its `documentId`) as batches.
//!
//! ```sh
//! cargo run -p intake-client --example push_jsonl -- http://127.0.0.1:8080 default SOURCE_ID API_KEY items.jsonl
//! ```

use std::io::BufRead;

use intake_client::{BatchPacker, Endpoint, PushClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [api_url, organization_id, source_id, api_key, path] = args.as_slice() else {
        return Err("usage: push_jsonl API_URL ORG SOURCE API_KEY FILE.jsonl".into());
    };
    let client = PushClient::new(Endpoint {
        api_url: api_url.clone(),
        organization_id: organization_id.clone(),
        source_id: source_id.clone(),
        api_key: api_key.clone(),
    })?;
    // One orderingId for the whole run: re-running it after an interruption rewrites the same items.
    let ordering_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let mut packer = BatchPacker::new(64 << 20);
    let (mut items, mut batches) = (0, 0);
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        items += 1;
        if let Some(full) = packer.push_add(line.as_bytes()) {
            client.send_batch(full, Some(ordering_id)).await?;
            batches += 1;
        }
    }
    if let Some(last) = packer.finish() {
        client.send_batch(last, Some(ordering_id)).await?;
        batches += 1;
    }
    println!("{items} items in {batches} batches ({} retries)", client.retries());
    Ok(())
}
