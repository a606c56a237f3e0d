// The official Node SDK pushing a folder of JSON files with batchUpdateDocumentsFromFiles (what the Coveo CLI's
// `source:push:add` does), for bench/run.sh's comparison with `intake push`.
// Usage: PUSH_URL=http://127.0.0.1:PORT NODE_PATH=compat/node_modules \
//          node --require ./compat/coveo_redirect.cjs bench/push_node.cjs API_KEY ORG SOURCE FOLDER
const {PushSource} = require('@coveo/push-api-client');

async function main() {
  const [apiKey, org, source, folder] = process.argv.slice(2);
  const push = new PushSource(apiKey, org);
  let uploads = 0;
  await push
    .batchUpdateDocumentsFromFiles(source, [folder], {createFields: false})
    .onBatchUpload(() => uploads++)
    .onBatchError((error) => { throw error; })
    .batch();
  console.log(JSON.stringify({uploads}));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
