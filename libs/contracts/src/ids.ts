import { z } from 'zod';

/** Session, owner and execution ids (wire contract): 1–128 of `[A-Za-z0-9._:-]`. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const idSchema = z
  .string()
  .regex(ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');

/** Tenant names are narrower: they become part of every Redis key. */
export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
