import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceLocation } from './location.js';

/**
 * Maps a position in generated JavaScript back to its TypeScript source through the file's source
 * map (a `.map` beside it, or an inline one). Done lazily, only when a message shows a location:
 * enabling Node's source maps would parse every map at startup.
 */
export function originalLocation(loc: SourceLocation): SourceLocation {
  if (loc.line === undefined || !/\.[cm]?js$/.test(loc.file)) return loc;
  const map = loadMap(loc.file);
  if (!map) return loc;
  const segments = map.lines[loc.line - 1];
  if (!segments?.length) return loc;
  const col = (loc.column ?? 1) - 1;
  let best = segments[0]!;
  for (const s of segments) if (s.genCol <= col) best = s;
  return { file: map.sources[best.source] ?? loc.file, line: best.line + 1, column: best.col + 1 };
}

interface Segment {
  genCol: number;
  source: number;
  line: number;
  col: number;
}

interface ParsedMap {
  sources: string[];
  lines: Segment[][];
}

const cache = new Map<string, ParsedMap | null>();

function loadMap(file: string): ParsedMap | null {
  if (cache.has(file)) return cache.get(file)!;
  let parsed: ParsedMap | null = null;
  try {
    const code = readFileSync(file, 'utf8');
    const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(code)?.[1];
    if (url) {
      const raw = url.startsWith('data:') ? Buffer.from(url.slice(url.indexOf(',') + 1), 'base64').toString('utf8') : readFileSync(resolve(dirname(file), url), 'utf8');
      const json = JSON.parse(raw) as { sources: string[]; sourceRoot?: string; mappings: string };
      const base = url.startsWith('data:') ? dirname(file) : dirname(resolve(dirname(file), url));
      const sources = json.sources.map((s) => (s.startsWith('file://') ? fileURLToPath(s) : resolve(base, json.sourceRoot ?? '', s)));
      parsed = { sources, lines: decodeMappings(json.mappings) };
    }
  } catch {
    parsed = null;
  }
  cache.set(file, parsed);
  return parsed;
}

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

/** Decodes the "mappings" field (base64 VLQ, fields relative to the previous segment). */
function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = [];
  let source = 0;
  let line = 0;
  let col = 0;
  for (const lineText of mappings.split(';')) {
    const segs: Segment[] = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const f = vlq(seg);
      genCol += f[0]!;
      if (f.length >= 4) {
        source += f[1]!;
        line += f[2]!;
        col += f[3]!;
        segs.push({ genCol, source, line, col });
      }
    }
    lines.push(segs);
  }
  return lines;
}

function vlq(s: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of s) {
    const digit = B64.get(ch)!;
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}
