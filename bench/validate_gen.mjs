// Writes the validator benchmark's inputs to OUT/cases.json, deterministically:
//   - "order-1k" / "order-10k": CloudEvents envelopes of an example.order.placed
//     event whose `data` is about 1 KB / 10 KB, with a realistic schema;
//   - "suite-valid": every valid instance of JSON-Schema-Test-Suite's
//     draft2020-12 required tests whose schema needs no remote document
//     (skipped when the suite is not beside the project).
// Both validators read this one file, so they time the same work.
//   node bench/validate_gen.mjs OUT_DIR [SUITE_DIR]
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

// Suite cases ajv cannot compile or run (it overflows its stack on some
// reference cycles) are left out for both validators, and counted.
function ajvHandles(schema, instances) {
	try {
		const ajv = new Ajv2020({ strict: false, validateFormats: false, multipleOfPrecision: 9 });
		addFormats(ajv);
		const v = ajv.compile(schema);
		return instances.every((d) => v(d));
	} catch {
		return false;
	}
}

const [out, suiteDir] = process.argv.slice(2);

// xorshift32: same documents on every run
let seed = 0x2545f491;
const rnd = (n) => {
	seed ^= seed << 13; seed >>>= 0;
	seed ^= seed >>> 17;
	seed ^= seed << 5; seed >>>= 0;
	return seed % n;
};
const pick = (a) => a[rnd(a.length)];

const orderSchema = {
	$schema: 'https://json-schema.org/draft/2020-12/schema',
	$id: 'https://tributary.example/schemas/example.order.placed.json',
	type: 'object',
	required: ['specversion', 'id', 'source', 'type', 'data'],
	properties: {
		specversion: { const: '1.0' },
		id: { type: 'string', minLength: 1, maxLength: 128 },
		source: { type: 'string', format: 'uri-reference', minLength: 1 },
		type: { const: 'example.order.placed' },
		time: { type: 'string', format: 'date-time' },
		datacontenttype: { enum: ['application/json'] },
		subject: { type: 'string' },
		data: { $ref: '#/$defs/order' },
	},
	additionalProperties: { type: ['string', 'boolean', 'integer'] },
	$defs: {
		money: { type: 'number', minimum: 0, multipleOf: 0.01 },
		order: {
			type: 'object',
			required: ['orderId', 'customer', 'lines', 'total', 'currency'],
			additionalProperties: false,
			properties: {
				orderId: { type: 'string', pattern: '^ord_[0-9a-f]{16}$' },
				customer: {
					type: 'object',
					required: ['id', 'email'],
					properties: {
						id: { type: 'string', pattern: '^cus_[0-9a-f]{12}$' },
						email: { type: 'string', format: 'email', maxLength: 254 },
						name: { type: 'string', maxLength: 200 },
					},
				},
				currency: { enum: ['EUR', 'USD', 'GBP', 'CHF'] },
				lines: {
					type: 'array',
					minItems: 1,
					maxItems: 1000,
					items: {
						type: 'object',
						required: ['sku', 'qty', 'unitPrice'],
						additionalProperties: false,
						properties: {
							sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4,8}$' },
							qty: { type: 'integer', minimum: 1, maximum: 10000 },
							unitPrice: { $ref: '#/$defs/money' },
							note: { type: 'string', maxLength: 500 },
							tags: { type: 'array', items: { type: 'string' }, uniqueItems: true },
						},
					},
				},
				total: { $ref: '#/$defs/money' },
				shipping: {
					type: 'object',
					properties: {
						method: { enum: ['standard', 'express', 'pickup'] },
						address: {
							type: 'object',
							required: ['line1', 'city', 'country'],
							properties: {
								line1: { type: 'string' },
								city: { type: 'string' },
								postcode: { type: 'string', maxLength: 16 },
								country: { type: 'string', pattern: '^[A-Z]{2}$' },
							},
						},
					},
				},
			},
		},
	},
};

const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[rnd(16)]).join('');

function order(targetBytes) {
	const data = {
		orderId: `ord_${hex(16)}`,
		customer: { id: `cus_${hex(12)}`, email: `buyer${rnd(1000)}@example.com`, name: 'Ada Lovelace' },
		currency: pick(['EUR', 'USD', 'GBP']),
		lines: [],
		total: 0,
		shipping: { method: 'express', address: { line1: '1 Main Street', city: 'Lyon', postcode: '69001', country: 'FR' } },
	};
	let total = 0;
	while (JSON.stringify(data).length < targetBytes - 60) {
		const cents = 100 + rnd(9900);
		const qty = 1 + rnd(5);
		data.lines.push({
			sku: `${pick(['ABC', 'XYZ', 'KLM'])}-${1000 + rnd(90000)}`,
			qty,
			unitPrice: cents / 100,
			tags: [pick(['gift', 'fragile']), pick(['eco', 'promo'])],
		});
		total += cents * qty;
	}
	data.total = total / 100;
	return {
		specversion: '1.0',
		id: hex(32),
		source: '/web/checkout',
		type: 'example.order.placed',
		time: '2024-05-04T10:11:12.345Z',
		datacontenttype: 'application/json',
		data,
	};
}

const cases = [
	{ name: 'order-1k', schema: orderSchema, instances: [order(1024)] },
	{ name: 'order-10k', schema: orderSchema, instances: [order(10240)] },
];

if (suiteDir && fs.existsSync(path.join(suiteDir, 'tests/draft2020-12'))) {
	const dir = path.join(suiteDir, 'tests/draft2020-12');
	const group = { name: 'suite-valid', schemas: [] };
	for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
		const text = fs.readFileSync(path.join(dir, f), 'utf8');
		// bignums would not survive JSON.parse the same way in both
		if (/localhost:1234/.test(text) || /[0-9]{17,}/.test(text)) continue;
		for (const tc of JSON.parse(text)) {
			const valid = tc.tests.filter((t) => t.valid).map((t) => t.data);
			if (!valid.length) continue;
			if (!ajvHandles(tc.schema, valid)) {
				group.dropped = (group.dropped || 0) + 1;
				continue;
			}
			group.schemas.push({ file: f, description: tc.description, schema: tc.schema, instances: valid });
		}
	}
	cases.push(group);
}
fs.writeFileSync(path.join(out, 'cases.json'), JSON.stringify(cases));
for (const c of cases)
	console.error(
		`${c.name}: ${c.instances ? `${JSON.stringify(c.instances[0]).length} bytes` : `${c.schemas.length} schemas, ${c.dropped || 0} left out (ajv cannot run them)`}`,
	);
