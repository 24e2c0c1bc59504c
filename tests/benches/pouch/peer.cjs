// The PouchDB side of `cargo xtask bench sync`: one document per visit, replicated the way
// CouchDB-based field apps do it, so the bench can set its bytes beside ours.
//
//   node peer.cjs server       a CouchDB-API server (express-pouchdb) on a free loopback
//                              port; prints `listening on http://127.0.0.1:PORT`, then serves
//                              until its stdin closes.
//   node peer.cjs client URL   a device: reads one JSON command a line on stdin and answers
//                              one JSON line on stdout (see `handle`). URL is the server's
//                              database, through the bench's byte-counting proxy.
//
// The packages come from NODE_PATH (the xtask installs them at pinned versions). Both sides
// use the in-memory adapter (`pouchdb-adapter-memory`, memdown): no native build, no files
// left behind, and the bytes on the wire do not depend on the storage. It makes PouchDB's
// times a lower bound (nothing is written to disk, where ours commits SQLite with
// synchronous=FULL on both ends).
'use strict';

const fs = require('fs');
const readline = require('readline');
const { performance } = require('perf_hooks');
const PouchDB = require('pouchdb').plugin(require('pouchdb-adapter-memory'));

const MemoryPouch = PouchDB.defaults({ adapter: 'memory' });

function server() {
  // `minimumForPouchDB`: the routes replication uses (and express-pouchdb's compression
  // middleware, which gzips answers when asked, as PouchDB's fetch does); no config or
  // log files.
  const app = require('express-pouchdb')(MemoryPouch, {
    mode: 'minimumForPouchDB',
    inMemoryConfig: true,
  });
  const listener = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${listener.address().port}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

async function client(url) {
  // HTTP requests the client sends: every one goes through the remote database's `fetch`.
  let requests = 0;
  const fetch = (target, options) => {
    requests += 1;
    return PouchDB.fetch(target, options);
  };
  const remote = () => new PouchDB(url, { fetch });
  const device = new MemoryPouch('device');
  const server = remote();
  let fresh = 0;

  // One replication, timed, with the requests it sent.
  async function replicate(run) {
    requests = 0;
    const start = performance.now();
    const result = await run();
    const ms = performance.now() - start;
    if (!result.ok || result.doc_write_failures > 0) {
      throw new Error(`replication failed: ${JSON.stringify(result)}`);
    }
    return {
      requests,
      ms,
      docs_read: result.docs_read,
      docs_written: result.docs_written,
    };
  }

  async function handle(command) {
    switch (command.op) {
      case 'versions':
        return {
          pouchdb: PouchDB.version,
          'express-pouchdb': require('express-pouchdb/package.json').version,
          'pouchdb-adapter-memory': require('pouchdb-adapter-memory/package.json').version,
          node: process.version,
        };
      // Writes the documents in `file` (a JSON array, each with its `_id`) into the
      // device's database: new ones are created, known ones get a new revision.
      case 'put': {
        const docs = JSON.parse(fs.readFileSync(command.file, 'utf8'));
        const known = await device.allDocs({ keys: docs.map((d) => d._id) });
        known.rows.forEach((row, i) => {
          if (row.value && !row.value.deleted) {
            docs[i]._rev = row.value.rev;
          }
        });
        const written = await device.bulkDocs(docs);
        const failed = written.filter((r) => r.error);
        if (failed.length > 0) {
          throw new Error(`put failed: ${JSON.stringify(failed[0])}`);
        }
        return { written: written.length };
      }
      // One-shot replication of the device's database to the server, as an app's sync
      // button does (checkpoints kept between runs, on both sides).
      case 'push':
        return replicate(() => device.replicate.to(server));
      // A new device: an empty database pulls everything from the server. Answers its
      // document count and the document `check` as it arrived.
      case 'pull': {
        fresh += 1;
        const newcomer = new MemoryPouch(`newcomer-${fresh}`);
        const answer = await replicate(() => newcomer.replicate.from(remote()));
        answer.doc_count = (await newcomer.info()).doc_count;
        if (command.check) {
          answer.check = await newcomer.get(command.check);
        }
        await newcomer.destroy();
        return answer;
      }
      default:
        throw new Error(`unknown op ${command.op}`);
    }
  }

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    let answer;
    try {
      answer = await handle(JSON.parse(line));
    } catch (e) {
      answer = { error: String((e && e.stack) || e) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
}

const [role, url] = process.argv.slice(2);
if (role === 'server') {
  server();
} else if (role === 'client' && url) {
  client(url).catch((e) => {
    process.stderr.write(`${(e && e.stack) || e}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: node peer.cjs server | client URL\n');
  process.exit(2);
}
