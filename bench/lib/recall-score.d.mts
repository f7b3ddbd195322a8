export interface EvalQuestion {
  q: string;
  id: string;
  kind: 'paraphrase' | 'typo' | 'no-title-word';
}
export interface RecallRow extends EvalQuestion {
  rank: number;
  got: string[];
}
export interface Recall {
  n: number;
  at1: number;
  at3: number;
  misses: RecallRow[];
  rows: RecallRow[];
}
export const QUESTIONS_FILE: string;
export const HELD_OUT_FILE: string;
export function loadQuestions(file?: string): EvalQuestion[];
export function scoreRecall(
  questions: EvalQuestion[],
  find: (q: string, limit: number) => { id: string }[],
  limit?: number,
): Recall;
