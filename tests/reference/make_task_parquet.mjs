// Writes the parquet task fixtures (tests/TestData/tasks/**/*.parquet) from the .rows twins make_task_fixtures.py
// wrote beside them, with parquet-wasm (arrow-rs's parquet writer, the Rust twin of the pyarrow that makes HF's
// parquet exports): an independent writer, not the Parquet.Net that Duet reads with. Lists and structs are Arrow
// List and Struct columns, written as parquet 3-level LISTs and groups in version-1 data pages, as pyarrow writes them.
//   (cd tests/reference && npm ci && node make_task_parquet.mjs)
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as arrow from 'apache-arrow'
import * as pw from 'parquet-wasm'

const root = join(import.meta.dirname, '..', 'TestData', 'tasks')

function* twins(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* twins(p)
    else if (name.endsWith('.parquet.rows')) yield p
  }
}

// A column type of the twins (STRING, INT32, INT64, LIST<T>, STRUCT<name:T,...>) as an Arrow type.
function typeOf(type) {
  if (type === 'STRING') return new arrow.Utf8()
  if (type === 'INT32') return new arrow.Int32()
  if (type === 'INT64') return new arrow.Int64()
  let m = /^LIST<(.*)>$/.exec(type)
  if (m) return new arrow.List(new arrow.Field('element', typeOf(m[1]), true))
  m = /^STRUCT<(.*)>$/.exec(type)
  if (m) {
    const fields = m[1].match(/[a-zA-Z_]+:(?:LIST<[A-Z0-9]+>|[A-Z0-9]+)/g).map(f => f.split(/:(.*)/s))
    return new arrow.Struct(fields.map(([n, t]) => new arrow.Field(n, typeOf(t), true)))
  }
  throw new Error(`unknown type ${type}`)
}

const props = () => new pw.WriterPropertiesBuilder().setCompression(pw.Compression.SNAPPY).build()
for (const twin of twins(root)) {
  const { types, rows } = JSON.parse(readFileSync(twin, 'utf8'))
  const columns = {}
  for (const [name, type] of Object.entries(types))
    columns[name] = arrow.vectorFromArray(rows.map(r => type === 'INT64' ? BigInt(r[name]) : r[name]), typeOf(type))
  const table = pw.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table(columns), 'stream'))
  const filename = twin.slice(0, -'.rows'.length)
  writeFileSync(filename, pw.writeParquet(table, props()))
  console.log(filename)
}
