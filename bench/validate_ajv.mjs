// ajv 8 (draft 2020-12, ajv-formats) on bench/validate_gen.mjs's cases:
// prints `NAME validate_ns parse_validate_ns N` per case, the median over
// REPS repetitions of ns per validation, from a parsed document and from
// its bytes (JSON.parse + validate).
//   node bench/validate_ajv.mjs CASES.json [REPS]
import fs from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [file, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 7);
const cases = JSON.parse(fs.readFileSync(file, 'utf8'));

// a fresh instance per schema: the suite reuses $id values across cases
const compile = (schema) => {
	const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false, multipleOfPrecision: 9 });
	addFormats(ajv);
	return ajv.compile(schema);
};

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

function time(pairs, fromBytes, minNs = 2e8) {
	// enough iterations for ~0.2 s per repetition
	let iters = 1;
	const run = (n) => {
		const t0 = process.hrtime.bigint();
		let ok = 0;
		for (let k = 0; k < n; k++)
			for (const [v, doc, text] of pairs) ok += v(fromBytes ? JSON.parse(text) : doc) ? 1 : 0;
		const ns = Number(process.hrtime.bigint() - t0);
		if (ok !== n * pairs.length) throw new Error('ajv judged a valid instance invalid');
		return ns;
	};
	while (run(iters) < minNs / 10) iters *= 2;
	iters *= 10;
	const samples = [];
	for (let r = 0; r < reps; r++) samples.push(run(iters) / (iters * pairs.length));
	return median(samples);
}

for (const c of cases) {
	const pairs = [];
	const groups = c.schemas || [{ schema: c.schema, instances: c.instances }];
	let skipped = 0;
	for (const g of groups) {
		let v;
		try {
			v = compile(g.schema);
		} catch {
			skipped++;
			continue;
		}
		for (const doc of g.instances) {
			if (!v(doc)) { skipped++; continue; }
			pairs.push([v, doc, JSON.stringify(doc)]);
		}
	}
	const a = time(pairs, false), b = time(pairs, true);
	console.log(`${c.name} ${a.toFixed(0)} ${b.toFixed(0)} ${pairs.length}${skipped ? ` skipped=${skipped}` : ''}`);
}
