/**
 * Which IT vocabulary file the embedded KB searches with: the one `kb import` brought (a row of kb_synonyms),
 * else the file shipped in kb/ (so an upgrade brings its new words). Importing articles without a file keeps
 * whichever is in use; an imported file stays until another is imported.
 */
import type { Db } from '../../store/sqlite/db.js';
import { bundledSynonyms, parseSynonyms, type Synonyms } from './synonyms.js';

interface Row {
  version: number;
  source: string;
  text: string;
  imported_at: number;
}

export class KbSynonymStore {
  private loaded: { at: number; synonyms: Synonyms; source: string } | undefined;
  private readonly rowStmt;
  private readonly stampStmt;

  constructor(private readonly db: Db) {
    this.rowStmt = db.prepare<[], Row>('SELECT version, source, text, imported_at FROM kb_synonyms WHERE id = 1');
    this.stampStmt = db.prepare<[], { imported_at: number }>('SELECT imported_at FROM kb_synonyms WHERE id = 1');
  }

  /** The vocabulary in use (read once, then again only after `refresh` finds a newer import). */
  current(): Synonyms {
    return (this.loaded ??= this.load()).synonyms;
  }

  /** Where the vocabulary in use comes from, for `policy check --probe` and `kb import`. */
  source(): string {
    return (this.loaded ??= this.load()).source;
  }

  /** Re-reads the row when another process imported a file since (one indexed read). */
  refresh(): void {
    if (this.loaded && (this.stampStmt.get()?.imported_at ?? 0) !== this.loaded.at) this.loaded = undefined;
  }

  /** Validates and stores a file brought by `kb import` (an invalid file throws, naming the field, and changes nothing). */
  put(text: string, source: string, now = Date.now()): Synonyms {
    const s = parseSynonyms(text, source);
    this.db
      .prepare(
        `INSERT INTO kb_synonyms (id, version, source, text, imported_at) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET version = excluded.version, source = excluded.source, text = excluded.text,
           imported_at = excluded.imported_at`,
      )
      .run(s.version, source, text, now);
    this.loaded = undefined;
    return s;
  }

  private load(): { at: number; synonyms: Synonyms; source: string } {
    const row = this.rowStmt.get();
    if (!row) return { at: 0, synonyms: bundledSynonyms(), source: 'shipped with itguard (kb/synonyms.yaml)' };
    return {
      at: row.imported_at,
      synonyms: parseSynonyms(row.text, row.source),
      source: `imported from ${row.source} at ${new Date(row.imported_at).toISOString()}`,
    };
  }
}
